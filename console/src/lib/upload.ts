// A file uploaded through storage: `POST /uploads` (its metadata) answers a presigned URL; the bytes go there
// directly (PUT); `POST /uploads/{id}/complete` then has storage check the size and the type and keep it.
import { request, STORAGE, uuid } from './api';
import { bytes } from './format';
import type { ObjectView, UploadView } from './types';

export interface UploadOptions {
  /** The type declared to storage (its policy must allow it, and the bytes must match it). */
  contentType: string;
  /** What it is for, e.g. `import` (lower-case letters, digits and `_`). */
  purpose: string;
  /** What it belongs to, in the caller's terms (a conversation id...). */
  ownerReference?: string;
}

/** Uploads `file` and completes it; `onStep` hears where it is, in words. */
export async function uploadFile(file: File, opts: UploadOptions, onStep: (s: string) => void = () => undefined): Promise<ObjectView> {
  onStep('Starting the upload…');
  const up = await request<UploadView>('POST', `${STORAGE}/uploads`, {
    body: {
      filename: file.name,
      content_type: opts.contentType,
      size_bytes: file.size,
      purpose: opts.purpose,
      ...(opts.ownerReference ? { owner_reference: opts.ownerReference } : {}),
    },
    idempotencyKey: uuid(),
  });
  onStep(`Uploading ${bytes(file.size)}…`);
  let put: Response;
  try {
    put = await fetch(up.upload_url, { method: up.upload_method || 'PUT', headers: up.upload_headers, body: file });
  } catch {
    throw new Error('The file could not be sent: check the connection and try again.');
  }
  if (!put.ok) throw new Error(`The file store refused the upload (${put.status}). Try again.`);
  onStep('Checking the upload…');
  return request<ObjectView>('POST', `${STORAGE}/uploads/${up.object.id}/complete`);
}

const TYPES_BY_EXTENSION: Record<string, string> = {
  pdf: 'application/pdf',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  csv: 'text/csv',
  txt: 'text/plain',
  json: 'application/json',
  zip: 'application/zip',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  ods: 'application/vnd.oasis.opendocument.spreadsheet',
};

/** The types storage can check, for a file input's `accept`. */
export const UPLOADABLE_TYPES = [...new Set(Object.values(TYPES_BY_EXTENSION))].join(',');

/** A file's content type: what the browser says, else one from its extension, else a generic one storage refuses. */
export function contentTypeOf(file: File): string {
  if (file.type) return file.type;
  const ext = file.name.split('.').pop()?.toLowerCase() ?? '';
  return TYPES_BY_EXTENSION[ext] ?? 'application/octet-stream';
}
