import {
  partRange,
  partTargetSchema,
  uploadResultSchema,
  uploadSessionSchema,
  type UploadResult,
  type UploadSessionView,
} from '@medlake/shared';
import { api, ApiError, apiErrorOf, currentCsrfToken } from '../../api.ts';

export type UploadFields = { dataset: string; hospital: string; month: string };

/**
 * Sends a file in parts through the upload-session API: each part to where the server says
 * (straight into the bucket on S3, through the server on local disk), then completes the
 * session, which ingests the file. The session is remembered in the browser for the file,
 * so that after a dropped connection the same file sent again resumes with the parts that
 * are missing instead of starting over.
 */
export async function sendInParts(
  file: File,
  fields: UploadFields,
  onSent: (bytes: number) => void,
): Promise<UploadResult> {
  const memory = `medlake-upload:${fields.dataset}:${fields.hospital}:${fields.month}:${file.name}:${file.size}:${file.lastModified}`;
  const session = (await resumable(localStorage.getItem(memory))) ?? (await start(file, fields));
  localStorage.setItem(memory, session.id);

  let done = session.arrived.reduce((sum, part) => sum + partRange(session, part).length, 0);
  onSent(done);
  for (let part = 1; part <= session.parts; part++) {
    if (session.arrived.includes(part)) continue;
    const target = await api(
      partTargetSchema,
      'GET',
      `/api/v1/upload-sessions/${session.id}/parts/${part}/target`,
    );
    const { start, length } = partRange(session, part);
    const bytes = file.slice(start, start + length);
    await put(target.url, bytes, (loaded) => onSent(done + loaded));
    done += bytes.size;
  }

  const response = await fetch(`/api/v1/upload-sessions/${session.id}/complete`, {
    method: 'POST',
    headers: { accept: 'application/json', 'x-csrf-token': currentCsrfToken() ?? '' },
    credentials: 'same-origin',
  });
  const body: unknown = await response.json().catch(() => null);
  const result = uploadResultSchema.safeParse(body);
  if (!result.success) throw apiErrorOf(response.status, body);
  localStorage.removeItem(memory);
  return result.data;
}

/** The session remembered for the file, if it is still open. */
async function resumable(id: string | null): Promise<UploadSessionView | undefined> {
  if (!id) return undefined;
  try {
    const session = await api(uploadSessionSchema, 'GET', `/api/v1/upload-sessions/${id}`);
    return session.status === 'open' ? session : undefined;
  } catch {
    // Expired, cancelled or someone else's: start afresh.
    return undefined;
  }
}

function start(file: File, fields: UploadFields): Promise<UploadSessionView> {
  return api(uploadSessionSchema, 'POST', '/api/v1/upload-sessions', {
    ...fields,
    fileName: file.name,
    bytes: file.size,
  });
}

/**
 * PUTs one part, reporting its progress: XMLHttpRequest, because fetch tells nothing of an
 * upload's progress. A part for the server carries the session's CSRF token; a presigned URL
 * of the bucket carries its own signature and nothing of the session.
 */
function put(url: string, bytes: Blob, onLoaded: (bytes: number) => void): Promise<void> {
  const toServer = url.startsWith('/');
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open('PUT', url);
    request.setRequestHeader('content-type', 'application/octet-stream');
    if (toServer) request.setRequestHeader('x-csrf-token', currentCsrfToken() ?? '');
    request.upload.onprogress = (event) => onLoaded(event.loaded);
    request.onload = () => {
      if (request.status >= 200 && request.status < 300) return resolve();
      let body: unknown = null;
      try {
        body = JSON.parse(request.responseText || 'null');
      } catch {
        // The bucket answers in XML: the status says enough.
      }
      reject(apiErrorOf(request.status, body));
    };
    request.onerror = () =>
      reject(
        new ApiError(
          0,
          'The connection broke off; nothing was published. Choose the same file and upload again: it goes on from the parts that arrived.',
        ),
      );
    request.send(bytes);
  });
}
