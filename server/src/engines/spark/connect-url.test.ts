import { describe, expect, it } from 'vitest';
import { parseConnectUrl } from './connect-url.ts';
import { literalOf } from './spark-literals.ts';

describe('Spark Connect URLs', () => {
  it('reads host, port and options, with the protocol’s defaults', () => {
    expect(parseConnectUrl('sc://spark.internal')).toEqual({
      host: 'spark.internal',
      port: 15002,
      token: null,
      useSsl: false,
      userId: 'medlake',
      headers: {},
    });
    expect(
      parseConnectUrl(
        'sc://dbc.example.net:443/;token=dapi%3Dx;use_ssl=true;x-databricks-cluster-id=0123-abc',
      ),
    ).toEqual({
      host: 'dbc.example.net',
      port: 443,
      token: 'dapi=x',
      useSsl: true,
      userId: 'medlake',
      headers: { 'x-databricks-cluster-id': '0123-abc' },
    });
  });

  it('sends a token only over TLS, and refuses what it does not know', () => {
    expect(parseConnectUrl('sc://h:1/;token=t').useSsl).toBe(true);
    expect(() => parseConnectUrl('http://h:1')).toThrow(/sc:\/\/host:15002/);
    expect(() => parseConnectUrl('sc://h:1/;tokn=t')).toThrow(/tokn/);
  });
});

describe('Spark literals', () => {
  it('types each parameter as the protocol wants it', () => {
    expect(literalOf(null)).toEqual({ null: { null: {} } });
    expect(literalOf(42)).toEqual({ integer: 42 });
    expect(literalOf(2 ** 40)).toEqual({ long: '1099511627776' });
    expect(literalOf(4.5)).toEqual({ double: 4.5 });
    expect(literalOf(2n ** 62n)).toEqual({ long: '4611686018427387904' });
    expect(literalOf("O'Brien")).toEqual({ string: "O'Brien" });
    expect(literalOf(new Date('2024-01-02T00:00:00Z'))).toEqual({ timestamp: '1704153600000000' });
    expect(literalOf([1, 2.5])).toEqual({
      array: { elementType: { double: {} }, elements: [{ double: 1 }, { double: 2.5 }] },
    });
    expect(literalOf([1, 2 ** 40])).toEqual({
      array: { elementType: { long: {} }, elements: [{ long: '1' }, { long: '1099511627776' }] },
    });
    expect(() => literalOf(Number.NaN)).toThrow(/finite/);
    expect(() => literalOf(['a', 1])).toThrow(/one type/);
  });
});
