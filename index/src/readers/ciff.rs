//! CIFF v1 (Common Index File Format) import and export.
