/*
 * cli.c - storage for the parsed global options (struct kb_cli), filled
 * once by main.c before any command runs and read-only after that.
 */
#include "util.h"

struct kb_cli kb_cli;
