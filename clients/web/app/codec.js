// msgpack as the wire protocol wants it (SPEC.md §1.1): str keys, bin for bytes,
// no extension types; absent fields are left out rather than sent as nil.
import { Decoder, Encoder } from "/vendor/msgpack/index.mjs";

const encoder = new Encoder({ ignoreUndefined: true });
const decoder = new Decoder();

/** One value as msgpack bytes. */
export const encode = (value) => encoder.encode(value);

/** One msgpack value; throws on trailing bytes or malformed input. */
export const decode = (bytes) => decoder.decode(bytes);
