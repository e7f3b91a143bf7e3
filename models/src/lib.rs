//! ember-models (see DESIGN §1).
