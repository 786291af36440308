"""The warehouse's reads of the source table and of past runs: reflecting the source (its columns,
segments and filters), the run totals, the spend so far, the scores frame and the rationales."""
