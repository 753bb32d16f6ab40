//! The inverted-file index file (docs/FORMAT.md, kind `Q2KEYIVF`).
