"""Domain verbs. Services check permissions, scope reads, write, audit and notify; they flush
and never commit: the caller (a view, an API handler, the CLI) commits once, so a change, its
audit entry and its notifications land together or not at all."""
