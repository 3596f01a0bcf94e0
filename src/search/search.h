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
 * `kbpipe search --project NAME [-k N] [--learnings] [--category C]
 * [--min-similarity S] [--pipeline FILE] [--use] [--json] QUERY...`
 * (cmd_search.c): embed the query with the model of the project's rows,
 * print the ranked results on stdout, log the query in search_queries.
 * KB_E_INPUT for an unknown project or rows of several (or unrecorded)
 * models; KB_E_CONFIG when the rows' model needs settings not given.
 */
enum kb_code cmd_search(int argc, char **argv, struct kb_err *err);

#endif /* KB_SEARCH_H */
