/*
 * cmd_search.c - `kbpipe search`: embed a query with the provider and model
 * the project's rows were embedded with, rank with the schema's
 * search_knowledge_chunks / search_learnings, print the results with the
 * lines that best match the query, and log the query in search_queries.
 *
 *   0.812  samples/docs/secrets.md  (Secrets > Rotation)
 *          | Rotate a secret with rotate_encryption_key(): ...
 */
#include <ctype.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "embed/embed.h"
#include "load/load.h"
#include "pipeline/pipeline.h"
#include "util/util.h"

static const char USAGE[] =
    "usage: kbpipe search --project NAME [-k N] [--learnings] [--category C]\n"
    "                     [--min-similarity S] [--pipeline FILE] [--use] [--json] QUERY\n"
    "\n"
    "Semantic search over a project's chunks (or learnings).  The query is embedded\n"
    "with the model the project's rows were embedded with; a project embedded by a\n"
    "remote provider needs --pipeline naming that provider's settings.  Each query is\n"
    "logged in search_queries.\n"
    "\n"
    "  --project NAME       the project (required)\n"
    "  -k N                 how many results (default 5)\n"
    "  --learnings          search learnings instead of chunks\n"
    "  --category C         learnings of this category only\n"
    "  --min-similarity S   drop results below S (default 0: rank only)\n"
    "  --pipeline FILE      the embedding settings to use (default: the project's\n"
    "                       model when it is the built-in one)\n"
    "  --use                count a use of each learning shown (increment_learning_usage)\n"
    "  --json               results as a JSON array on stdout\n"
    "\n"
    "Example:\n"
    "  kbpipe search --project supervisor-docs -k 3 \"how do I rotate a secret?\"\n";

struct search_args {
    const char *project, *category, *pipeline, *query;
    int k, is_learnings, is_json, is_use;
    double min_similarity;
};

/* Lower-case words of 3+ letters of the query, for picking snippet lines. */
static int query_words(const char *q, char words[][32], int max)
{
    int n = 0;
    while (*q && n < max) {
        while (*q && !isalnum((unsigned char)*q))
            q++;
        int len = 0;
        char w[32];
        while (*q && isalnum((unsigned char)*q)) {
            if (len < 31)
                w[len++] = (char)tolower((unsigned char)*q);
            q++;
        }
        w[len] = '\0';
        if (len >= 3)
            memcpy(words[n++], w, (size_t)len + 1);
    }
    return n;
}

/* Print up to 3 lines of content that share the most words with the query. */
static void print_snippet(FILE *out, const char *content, char words[][32], int n_words)
{
    struct line { const char *p; int len, score; } best[3] = { { 0 } };
    const char *p = content;
    while (*p) {
        const char *eol = strchr(p, '\n');
        int len = eol ? (int)(eol - p) : (int)strlen(p);
        int score = 0;
        for (int w = 0; w < n_words; w++) {
            size_t wl = strlen(words[w]);
            for (int i = 0; i + (int)wl <= len; i++)
                if (strncasecmp(p + i, words[w], wl) == 0) {
                    score++;
                    break;
                }
        }
        if (len > 0 && score > 0) {
            for (int b = 0; b < 3; b++)
                if (score > best[b].score) {
                    memmove(&best[b + 1], &best[b], sizeof best[0] * (size_t)(2 - b));
                    best[b] = (struct line){ p, len, score };
                    break;
                }
        }
        p = eol ? eol + 1 : p + len;
    }
    if (best[0].p == NULL) {   /* no word in common: the opening line */
        const char *eol = strchr(content, '\n');
        best[0] = (struct line){ content, eol ? (int)(eol - content) : (int)strlen(content), 1 };
    }
    /* in document order */
    for (int a = 0; a < 3; a++)
        for (int b = a + 1; b < 3; b++)
            if (best[b].p && best[a].p && best[b].p < best[a].p) {
                struct line t = best[a];
                best[a] = best[b];
                best[b] = t;
            }
    for (int b = 0; b < 3; b++) {
        if (best[b].p == NULL)
            continue;
        int len = best[b].len;
        /* at most 100 bytes, never inside a UTF-8 sequence */
        if (len > 100) {
            len = 100;
            while (len > 0 && ((unsigned char)best[b].p[len] & 0xC0) == 0x80)
                len--;
        }
        fprintf(out, "         | %.*s%s\n", len, best[b].p, len < best[b].len ? "..." : "");
    }
}
