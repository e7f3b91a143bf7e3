//! ember-protocol (see DESIGN §1).
