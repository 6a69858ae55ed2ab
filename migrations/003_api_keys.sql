-- API keys managed by `npm run keys` (AUTH_MODE=api_key). Only a SHA-256 hash of each key is
-- stored: the key itself is printed once, when it is created, and cannot be recovered.
CREATE TABLE api_keys (
  key_id      uuid PRIMARY KEY,
  -- hex SHA-256 of the whole key: what a request's key is looked up by
  key_hash    text NOT NULL UNIQUE,
  -- the key's first characters, to tell keys apart in listings without revealing them
  key_prefix  text NOT NULL,
  user_id     text NOT NULL,
  name        text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  -- refreshed at most once a minute, so authentication stays a read
  last_used_at timestamptz,
  -- a revoked key stays listed, and answers 401
  revoked_at  timestamptz
);
CREATE INDEX api_keys_user ON api_keys (user_id, created_at DESC);
