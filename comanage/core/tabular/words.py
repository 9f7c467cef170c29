"""The words read as true and false, in every import and in indicator criteria."""

TRUE_WORDS: tuple[str, ...] = ("true", "t", "yes", "y", "1")
FALSE_WORDS: tuple[str, ...] = ("false", "f", "no", "n", "0")
BOOL_WORDS: tuple[str, ...] = TRUE_WORDS + FALSE_WORDS
