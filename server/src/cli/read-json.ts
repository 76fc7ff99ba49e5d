import { readFile } from 'node:fs/promises';
import { AppError } from '../errors.ts';

/** Reads a JSON file named on the command line, with a clear error for each way it can fail. */
export async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new AppError('file_not_found', `Cannot read ${file}`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new AppError('invalid_input', `${file} is not valid JSON: ${(error as Error).message}`);
  }
}
