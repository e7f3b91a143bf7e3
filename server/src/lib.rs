//! ember-server library.
