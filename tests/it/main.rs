//! The single integration-test binary (DESIGN §1): real server, real weights.
