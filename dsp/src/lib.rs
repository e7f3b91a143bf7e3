//! ember-dsp (see DESIGN §1).
