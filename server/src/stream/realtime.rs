//! OpenAI realtime transcription sessions (PROTOCOL §4).
