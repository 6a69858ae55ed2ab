export {
  allowPrivateWebhooks,
  forbiddenAddress,
  hasCredentials,
  literalAddressProblem,
  webhookCreateProblem,
  webhookUrlProblem,
  WEBHOOK_URL_MAX_LENGTH,
  withoutCredentials,
} from './address.ts';
export { deliver, resolveTarget, WebhookRefused, EXCERPT_CHARS } from './deliver.ts';
export type { DeliveryOptions, DeliveryResult } from './deliver.ts';
export { enqueueWebhooks, recordDelivery, recordLostDelivery, webhookBody } from './jobs.ts';
export type { DeliveryRecord, WebhookJob, WebhookRun } from './jobs.ts';
export { SIGNATURE_HEADER, TIMESTAMP_HEADER, signWebhook, verifyWebhook } from './signature.ts';
export { WebhookWorker } from './worker.ts';
export type { WebhookWorkerOptions } from './worker.ts';
