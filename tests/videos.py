"""Clips for the video tests: the fixtures (ThreatExchange's test clips, re-encoded small;
tests/fixtures/README.md) and clips encoded here with PyAV."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

VIDEOS = Path(__file__).parent / "fixtures" / "videos"
DOORKNOB = VIDEOS / "doorknob.mp4"  # 320x180, 4.0 s, 30 frames/s
CHAIR = VIDEOS / "chair.mp4"  # 240x360, 12.0 s, 30 frames/s
PATTERN = VIDEOS / "pattern.mp4"  # 240x360, 6.9 s, 30 frames/s


def encode(
    pictures,
    *,
    fps: float = 10,
    times: list[float] | None = None,
    container: str = "mp4",
    codec: str = "libx264",
    rotation: int | None = None,
    crf: int | None = None,
) -> bytes:
    """Pictures (PIL images or RGB arrays, all one size) as a clip: at `fps`, or at
    `times` (seconds: a variable frame rate); `crf`: x264's quality (its default, 23)."""
    pictures = [np.asarray(p.convert("RGB") if isinstance(p, Image.Image) else p) for p in pictures]
    height, width = pictures[0].shape[:2]
    out = io.BytesIO()
    target = av.open(out, "w", format=container)
    stream = target.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.time_base = Fraction(1, 1000)
    if crf is not None:
        stream.options = {"crf": str(crf)}
    if times is not None:
        stream.options = {**stream.options, "bframes": "0"}  # no reordering of irregular times
        stream.codec_context.time_base = Fraction(1, 1000)
    if rotation is not None:
        stream.set_display_rotation(rotation)
    for i, picture in enumerate(pictures):
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
        seconds = times[i] if times is not None else i / fps
        frame.pts, frame.time_base = round(seconds * 1000), Fraction(1, 1000)
        for packet in stream.encode(frame):
            target.mux(packet)
    for packet in stream.encode():
        target.mux(packet)
    target.close()
    return out.getvalue()


def transform(
    data: bytes,
    *,
    width: int | None = None,
    fps: float | None = None,
    start: float = 0.0,
    end: float | None = None,
    container: str = "mp4",
    codec: str = "libx264",
    crf: int = 30,
    change=None,
) -> bytes:
    """The clip re-encoded: resized to `width`, at another frame rate (frames dropped or
    repeated by timestamp), cut to [start, end), each picture passed through `change`
    (an RGB array in, one out: ``letterbox``, ``mirror``)."""
    source = av.open(io.BytesIO(data))
    stream = source.streams.video[0]
    source_rate = float(stream.average_rate or 30)  # read before close: freed after it
    pictures = []
    for frame in source.decode(stream):
        if frame.time < start:
            continue
        if end is not None and frame.time >= end:
            break
        w = width or frame.width
        h = round(frame.height * w / frame.width / 2) * 2
        picture = frame.to_ndarray(format="rgb24", width=w, height=h)
        pictures.append((frame.time - start, change(picture) if change else picture))
    source.close()
    if fps is not None:
        count = int(pictures[-1][0] * fps) + 1
        chosen, at = [], 0
        for k in range(count):
            while at + 1 < len(pictures) and pictures[at + 1][0] <= k / fps:
                at += 1
            chosen.append(pictures[at][1])
        frames, rate = chosen, fps
    else:
        frames, rate = [p for _, p in pictures], source_rate
    out = io.BytesIO()
    target = av.open(out, "w", format=container)
    enc = target.add_stream(codec, rate=Fraction(rate).limit_denominator(1000))
    enc.width, enc.height, enc.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
    enc.options = {"crf": str(crf)} if codec == "libx264" else {}
    for i, picture in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
        frame.pts = i
        frame.time_base = Fraction(1) / enc.codec_context.framerate
        for packet in enc.encode(frame):
            target.mux(packet)
    for packet in enc.encode():
        target.mux(packet)
    target.close()
    return out.getvalue()


def letterbox(picture: np.ndarray, widen: float = 1.5) -> np.ndarray:
    """The picture in the middle of a 16:9 frame `widen` times as wide, black around it."""
    h, w = picture.shape[:2]
    width = int(w * widen) // 2 * 2
    height = max(h, int(width * 9 / 16)) // 2 * 2
    out = np.zeros((height, width, 3), np.uint8)
    top, left = (height - h) // 2, (width - w) // 2
    out[top : top + h, left : left + w] = picture
    return out


def mirror(picture: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(picture[:, ::-1])
