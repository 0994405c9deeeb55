"""The motion + cut engine: an approved episode spec becomes a finished 9:16 MP4 (+ SRT/VTT, OTIO,
contact sheet). A pure library: the agent and the studio call ``render_episode``.

Heavy imports (cv2, soundfile, opentimelineio, pyloudnorm) happen inside the functions that need them.
"""
from tools.render.segments import RenderResult, render_episode
from tools.render.spec import CaptionCue, EpisodeSpec, ShotSpec, TakeCue, episode_duration, timeline

__all__ = ["CaptionCue", "EpisodeSpec", "RenderResult", "ShotSpec", "TakeCue", "episode_duration",
           "render_episode", "timeline"]
