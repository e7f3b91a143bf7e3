"""WER of the streaming endpoint on the shared English clips of 2.5-40 s, sent as fast as
possible (one connection per clip, clip + 0.5 s of silence, then `{"checkpoint_id":"final"}`).

Usage: stream_wer.py WS_URL [clip_id,clip_id,...]
  e.g. $EMBER_VENV/bin/python scripts/measure/stream_wer.py \
         "ws://127.0.0.1:8080/v1/audio/transcriptions/streaming?language=en&model=base"
Start the server yourself with the settings to compare (e.g. `--stream-short-audio-ctx false`
against `--stream-audio-ctx-slack-ms 4000`) and time the run with /usr/bin/time.
Needs websocket-client and ffmpeg (to decode the clips to 16 kHz s16le)."""

import json
import os
import subprocess
import sys

import websocket

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DATA_DIR, normalize, wer  # noqa: E402


def main():
    url = sys.argv[1]
    wanted = sys.argv[2].split(",") if len(sys.argv) > 2 else None
    with open(os.path.join(DATA_DIR, "manifest.jsonl")) as f:
        clips = [json.loads(line) for line in f]
    clips = [c for c in clips if c["lang"] == "en" and 2.5 < c["duration_s"] < 40 and (wanted is None or c["id"] in wanted)]
    total_ref = total_err = 0.0
    for clip in clips:
        pcm = subprocess.run(
            ["ffmpeg", "-loglevel", "quiet", "-i", os.path.join(DATA_DIR, clip["audio"]), "-f", "s16le", "-ac", "1", "-ar", "16000", "-"],
            capture_output=True, check=True,
        ).stdout + b"\0" * 16000
        ws = websocket.create_connection(url)
        for i in range(0, len(pcm), 1600):
            ws.send_binary(pcm[i:i + 1600])
        ws.send(json.dumps({"checkpoint_id": "final"}))
        last = None
        while True:
            message = json.loads(ws.recv())
            if message.get("checkpoint_id") == "final":
                break
            last = message
        ws.close()
        hyp = last["text"] if last else ""
        err = wer(clip["transcript"], hyp)["wer"]
        words = len(normalize(clip["transcript"]))
        total_ref += words
        total_err += err * words
        print(f"{clip['id'][:30]:30s} wer={err:.3f}  {hyp[:90]}")
    print(f"TOTAL WER {total_err / total_ref:.4f} over {int(total_ref)} words")


if __name__ == "__main__":
    main()
