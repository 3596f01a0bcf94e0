/*
 * fuzz_csv.c - the CSV reader (src/ingest/csv.c over libcsv: header,
 * column mapping, one document per record, learnings fields) on any bytes
 * as the CSV file.  The reader takes a path: the input is written to a
 * scratch file.  The settings (delimiter, on_invalid_utf8, target, key
 * columns) follow a hash of the input, mostly the defaults the seeds use.
 *
 * Invariants (ingest_check.h): open fails only with a one-line KB_E_INPUT;
 * every document has a source_id, UTF-8 text without NUL or CR, metadata
 * that is a JSON object and learnings fields in range; every KB_E_INPUT is
 * a one-line error with its bad bytes kept (at most 4 KB); the reader ends,
 * after at most one call per line and one more; its stats match.  Here
 * too: with on_invalid_utf8: replace every field is valid UTF-8, and the
 * key of a document is the key columns joined with '/'.
 */
#include "ingest_check.h"

static long count_lines(const uint8_t *d, size_t n)
{
    long lines = 1;
    for (size_t i = 0; i < n; i++)
        lines += d[i] == '\n' || d[i] == '\r';
    return lines;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kbfuzz_quiet();
    uint64_t h = kbfuzz_hash(data, size);
    const char *path = kbfuzz_write("rows.csv", data, size);
    struct ingest_source src;
    ingest_source_defaults(&src, INGEST_CSV);
    src.name = "fuzz";
    src.u.csv.path = path;
    static const char delims[] = { ',', ',', ',', ',', ',', ';', '\t', '|' };
    src.u.csv.delimiter = delims[h & 7];
    src.u.csv.on_invalid_utf8 = (h >> 3) & 1 ? INGEST_UTF8_REPLACE : INGEST_UTF8_REJECT;
    src.target = (h >> 4) & 1 ? KB_TARGET_LEARNINGS : KB_TARGET_KNOWLEDGE;
    src.u.csv.tags_separator = (h >> 5) & 1 ? ';' : ',';
    static const char *two_keys[] = { "id", "title" };
    if (((h >> 6) & 3) == 0) {
        src.u.csv.key.v = two_keys;
        src.u.csv.key.n = 2;
    }
    if (((h >> 8) & 7) == 0)
        src.u.csv.max_record_size = 64;
    enum kb_code open_rc;
    kbfuzz_read_all(&src, count_lines(data, size) + 2, NULL, NULL, &open_rc);
    kbfuzz_unlink("rows.csv");
    return 0;
}
