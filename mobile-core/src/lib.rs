//! The shared Tapline client core. Filled by the mobile-core issue; empty for now.
