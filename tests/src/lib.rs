//! End-to-end tests of ocirun: see tests/.
