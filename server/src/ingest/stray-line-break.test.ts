import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { firstStrayLineBreak } from './stray-line-break.ts';

const scan = (text: string) => firstStrayLineBreak(Readable.from([Buffer.from(text)]));

describe('firstStrayLineBreak', () => {
  it('finds none in files of one kind of line break, or inside quotes', async () => {
    expect(await scan('a,b\n1,2\n3,4\n')).toBeUndefined();
    expect(await scan('a,b\r\n1,2\r\n3,4')).toBeUndefined();
    expect(await scan('a,b\n"x\r\ny",2\n')).toBeUndefined();
  });

  it('names the line of a CR LF among LF lines, a lone CR, or a lone LF among CR LF lines', async () => {
    expect(await scan('a,b\n1,2\n;\r\n3,4\n')).toBe(3);
    expect(await scan('a,b\n1,x\ry\n')).toBe(2);
    expect(await scan('a,b\r\n1,2\r\n3,4\n5,6\r\n')).toBe(3);
    expect(await scan('a,b\n"x\ny",2\n3\r\n')).toBe(4);
  });
});
