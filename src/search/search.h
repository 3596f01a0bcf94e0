/*
 * search.h - the public face of src/search: `kbpipe search`, semantic
 * search over what src/load wrote.  It sits beside src/pipeline, under
 * main: it reads the knowledge base, never loads it.  The SQL of search
 * lives here (query.c), through src/db.
 */
#ifndef KB_SEARCH_H
#define KB_SEARCH_H

#include "util/util.h"

/*
 * `kbpipe search --project NAME [--mode M] [-k N] [--learnings] [filters]
 * [--min-similarity S] [--pipeline FILE] [--use] [--json] QUERY...`
 * (cmd_search.c): rank the project's rows for the query (vector, text or
 * hybrid; docs/search.md), print them on stdout, log the query in
 * search_queries.  KB_E_USAGE for options that do not fit together;
 * KB_E_INPUT for an unknown project or rows of several (or unrecorded)
 * models; KB_E_CONFIG when the rows' model needs settings not given.
 */
enum kb_code cmd_search(int argc, char **argv, struct kb_err *err);

/*
 * `kbpipe eval QUESTIONS.tsv --project NAME [--mode M] [-k N] [--repeat N]
 * [--pipeline FILE] [--json]` (cmd_eval.c): score the project's search on
 * labelled questions (recall@1, recall@k, MRR@k per mode, the misses) on
 * stdout; writes nothing to the database.  KB_E_INPUT naming file:line
 * for a bad question line; otherwise as cmd_search.
 */
enum kb_code cmd_eval(int argc, char **argv, struct kb_err *err);

#endif /* KB_SEARCH_H */
