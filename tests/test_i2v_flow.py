"""Image-to-video behind the motion Protocol: a tiny AnimateDiff pipeline built in code animates the
accepted panels on CPU, the motion proposal carries the clips, and the cut plays them."""
from __future__ import annotations

import numpy as np
import pytest

from agent.context import Targets
from agent.cut import episode_spec
from agent.voices import VoiceBackends
from memory.project import create_project
from tests.fakes import ScriptedChatModel
from tools.backends.animatic import AnimaticPainter
from ui.session import DirectorSession

pytestmark = pytest.mark.slow


def test_motion_proposal_animates_panels_and_the_cut_plays_the_clip(tmp_path):
    import torch

    from tools.backends.diffusers_motion import DiffusersMotion
    from tools.backends.tiny_diffusers import save_tiny_motion_adapter, save_tiny_sd
    from tools.render import render_episode
    from tools.render.motion import ClipMotion

    torch.set_num_threads(1)
    sd = save_tiny_sd(tmp_path / "tiny-sd")
    adapter = save_tiny_motion_adapter(tmp_path / "tiny-adapter")
    animator = DiffusersMotion(str(sd), str(adapter), steps=2, strength=0.6, width=64, height=112)
    project = create_project(tmp_path, "Fox Rain")
    with DirectorSession(project, ScriptedChatModel(), painter=AnimaticPainter(), voices=VoiceBackends(),
                         candidates=1, animator=animator,
                         targets=Targets(characters=2, locations=1, props=0, episodes=1, scenes=1, shots=2)) as s:
        s.context.clip_frames = 4
        s.start()
        view = s.send("A shrine maiden hears rain spirits.")
        while view.pending["kind"] != "motion":
            view = s.decide({"type": "accept"})
        shots = view.pending["data"]["shots"]
        assert len(shots) == 2 and all(len(m["clip"]) == 4 for m in shots)
        assert animator.load_count == 1                      # loaded once for the whole scene
        s.decide({"type": "accept"})
        spec = episode_spec(s.canon, project.root, width=270, height=480)
        assert all(len(shot.clip) == 4 for shot in spec.shots)
        motion = ClipMotion(spec.shots[0], 270, 480, 24)
        first, later = motion.frame(0.0).astype(np.int16), motion.frame(0.3).astype(np.int16)
        assert first.shape == (480, 270, 3) and np.abs(first - later).mean() > 0.5   # the clip moves
        result = render_episode(spec, tmp_path / "out", tmp_path / "cache")
        assert result.mp4.exists() and result.duration_s > 1
