"""Series scale: does a step cost the same in episode 30 as in episode 1?

Builds a synthetic 30-episode project with no model calls: every record goes through the canon API
as an accepted proposal (`Canon.commit_proposal`, then `Ledger.complete`, plus the assistant's
"propose" line), so ~600 shots, ~1,500 lines with their takes, panels, motion, continuity facts and
thousands of ledger entries are where the real flow would put them. Then it times, with the code
as it is:

- plan_ms_ep1 / plan_ms_ep30: choosing and preparing the next proposal (`agent.nodes.plan_next`:
  the registered kinds' planners, then the kind's bible retrieval that `propose` runs for that
  task), with episode 1 / episode 30 being written, each after a take of that episode is accepted
  (a step's own change; agent.plan_memo keeps what the other episodes' planners found);
  plan_ms_first_ep1 / _ep30: the first plan of the process, with nothing remembered;
- commit_ms_ep30: accepting a shot plan in episode 30 (`agent.nodes.commit`: canon, ledger, index);
- view_ms_ep30: the data of every studio panel (what ui/app.py's snapshot reads, through
  `DirectorSession`: the storyboard of the picked episode), with the ledger's last 200 decisions
  read from its tail;
- checkpoint_kb_per_message: a graph with Storyreel's state shape on a real strict SQLite
  checkpointer, `memory.transcript.bounded_messages` as the messages reducer and
  `trim_checkpoints` after each run, 1,000 messages; also without the two, for comparison;
- continuity_check_ms_p95: `check_scene` against all canon facts (loaded each time), per scene.

Prints progress, a breakdown of what each figure is made of, then one JSON line.
"""
from __future__ import annotations

import argparse
import json
import operator
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any, TypedDict

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CAST = ["Aiko", "Ren", "Kaito", "Mio", "Old Tomo", "Sora"]
PLACES = ["Hilltop Shrine", "Night Station", "River Market", "School Roof", "Fox Forest"]
PROPS = ["Paper Umbrella", "Brass Bell", "Silver Key", "Torn Map"]
SCENES, LINES, SHOTS = 5, 10, 4


class _StubModel:
    """Never called: the bench makes no model calls (tool-calling shape, so no router warm-up runs)."""

    description = "bench stub (no model calls)"
    is_demo = False

    def complete(self, *args: Any, **kwargs: Any) -> str:
        raise RuntimeError("the series bench makes no model calls")

    def chat_with_tools(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the series bench makes no model calls")


class _StubPainter:
    name = "animatic"


class _StubVoices:
    name = "piper"


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def _median_ms(fn: Any, runs: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(_ms(t0))
    return statistics.median(times), result


class Builder:
    """Writes the synthetic series as accepted proposals."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.commits = 0

    def accept(self, kind: str, write: Any) -> list[Any]:
        pid = uuid.uuid4().hex
        self.ctx.ledger.append(actor="assistant", action="propose", kind=kind, inputs={"proposal_id": pid})
        records, _ = self.ctx.canon.commit_proposal(pid, write, kind=kind, actor="auto", action="accept",
                                                    note=f"proposal {pid}", inputs={"retrieved": []})
        self.ctx.ledger.complete(self.ctx.canon, pid)
        self.commits += 1
        return records

    def base(self, episodes: int) -> None:
        from agent.storyboard import image_record_id, made_from
        from agent.voices import voice_id

        canon = self.ctx.canon
        self.accept("series", lambda: [
            canon.upsert("series", {"title": "Fox Rain", "logline": "A shrine maiden hears rain spirits."},
                         actor="auto", record_id="series"),
            canon.upsert("style", {"art_style": "anime cel shading", "palette": ["#1b2a4a", "#e05a47"],
                                   "tone": "bittersweet", "target_episode_seconds": 60},
                         actor="auto", record_id="style")])
        for name in CAST:
            self.accept("character", lambda name=name: [canon.create("character", {
                "name": name, "role": "lead", "age": "17", "personality": "stubborn, kind",
                "look_tags": ["red scarf", "black bob hair", "school uniform"], "voice_notes": "bright",
                "looks": [{"from_episode": 10, "outfit": "black mourning kimono"}]}, actor="auto")])
        for place in PLACES:
            self.accept("location", lambda place=place: [canon.create("location", {
                "name": place, "description": f"{place}, wet stone, lanterns", "look_tags": ["rain", "night"]},
                actor="auto")])
        for prop in PROPS:
            self.accept("prop", lambda prop=prop: [canon.create("prop", {
                "name": prop, "description": f"a {prop.lower()}", "owner": "Aiko", "look_tags": []}, actor="auto")])
        outline = {"episodes": [{"number": i, "title": f"Episode {i}", "logline": f"Things get worse, part {i}."}
                                for i in range(1, episodes + 1)]}
        self.accept("outline", lambda: [
            canon.upsert("outline", outline, actor="auto", record_id="outline"),
            *[canon.upsert("episode", dict(ep), actor="auto", record_id=f"episode-{ep['number']}")
              for ep in outline["episodes"]]])
        for rec in canon.list("character"):
            self.accept("casting", lambda rec=rec: [canon.upsert("voice", {
                "character_id": rec.id, "engine": "piper", "voice": "en_US-joe-medium"},
                actor="auto", record_id=voice_id(rec.id))])
        for kind, kind_of in (("reference", "character"), ("background", "location")):
            for rec in canon.list(kind_of):
                rid = image_record_id(kind, rec.id)
                self.accept(kind, lambda rec=rec, rid=rid, kind=kind: [canon.upsert("panel", {
                    "kind": kind, "subject": rec.id, "path": f"assets/panels/{rid}-v1.png", "seed": 1,
                    "model": "animatic", "source": "generated", "made_from": made_from(canon, kind, rec.id)},
                    actor="auto", record_id=rid)])

    def writing(self, ep: int) -> None:
        canon = self.ctx.canon
        beats = {"episode": ep, "beats": [{"kind": k, "summary": f"{k} of episode {ep}"}
                                          for k in ("hook", "escalation", "twist", "cliffhanger")]}
        self.accept("beats", lambda: [canon.upsert("beats", beats, actor="auto", record_id=f"beats-ep{ep}")])
        for n in range(1, SCENES + 1):
            sid = f"scene-ep{ep}-{n}"
            who = [CAST[(ep + n) % len(CAST)], CAST[(ep + n + 1) % len(CAST)]]
            action = (f"{who[0]} meets {who[1]} at dusk. {who[0]} takes the {PROPS[n % len(PROPS)].lower()}."
                      + (f" {CAST[(ep + 3) % len(CAST)]} is wounded." if n == 3 else ""))
            scene = {"episode": ep, "number": n, "title": f"Scene {n} of {ep}", "location": PLACES[n % len(PLACES)],
                     "characters": who, "action": action,
                     "lines": [{"speaker": who[i % 2], "line": f"Line {i} of scene {n}, episode {ep}: the rain again.",
                                "emotion": "neutral", "id": f"{sid}-l{i}"} for i in range(1, LINES + 1)]}
            self.accept("scene", lambda scene=scene, sid=sid: [canon.upsert("scene", scene, actor="auto",
                                                                            record_id=sid)])

    def production(self, ep: int) -> None:
        from agent.cut import motion_id
        from agent.storyboard import image_record_id, made_from, shots_of, write_shot_plan
        from agent.voices import take_id, take_made_from
        from memory.continuity import draft_facts, write_facts

        canon = self.ctx.canon
        scenes = [canon.get(f"scene-ep{ep}-{n}") for n in range(1, SCENES + 1)]
        for scene in scenes:
            self.accept("shots", lambda scene=scene: write_shot_plan(canon, shot_plan(scene), actor="auto",
                                                                     note="bench"))
            for shot in shots_of(canon, scene.id):
                rid = image_record_id("panel", shot.id)
                self.accept("panel", lambda shot=shot, rid=rid: [canon.upsert("panel", {
                    "kind": "panel", "subject": shot.id, "path": f"assets/panels/{rid}-v1.png", "seed": 7,
                    "model": "animatic", "source": "generated", "made_from": made_from(canon, "panel", shot.id)},
                    actor="auto", record_id=rid)])
            for line in scene.data["lines"]:
                self.accept("take", lambda line=line: [canon.upsert("take", {
                    "line_id": line["id"], "language": "en", "speaker": line["speaker"],
                    "path": f"assets/audio/{line['id']}-en-v1.wav", "lipsync": "phonemes",
                    "made_from": take_made_from(canon, line["id"], "en", line["speaker"])},
                    actor="auto", record_id=take_id(line["id"], "en"))])
            self.accept("motion", lambda scene=scene: [canon.upsert("motion", {
                "scene_id": scene.id, "shots": [{"shot_id": s.id, "camera_move": "static"}
                                                for s in shots_of(canon, scene.id)]},
                actor="auto", record_id=motion_id(scene.id))])
        card = draft_facts(ep, [s.data for s in scenes], cast=CAST, props=PROPS)
        self.accept("facts", lambda: write_facts(canon, card, actor="auto", note="bench"))


def shot_plan(scene: Any) -> dict[str, Any]:
    who = scene.data["characters"]
    per = LINES // SHOTS + 1
    return {"scene_id": scene.id, "shots": [
        {"framing": ("wide", "medium", "close-up", "medium")[k], "angle": "eye level", "camera_move": "static",
         "characters": [{"name": who[k % 2], "expression": "neutral", "pose": ""}], "location": scene.data["location"],
         "lighting": "rain light", "mood": "tense", "lines": list(range(k * per + 1, min(LINES, (k + 1) * per) + 1)),
         "duration_s": 3.0, "transition": "cut"} for k in range(SHOTS)]}


def _retrieve(ctx: Any, task: Any, premise: str) -> Any:
    """The bible retrieval `propose` runs for `task` (the kind's retrieve hook)."""
    from agent.kinds import get_kind
    from agent.kinds.base import Draft, names

    kind = get_kind(task["kind"])
    canon = ctx.canon
    d = Draft(kind, ctx, task, premise, names(canon, "character"), names(canon, "location"),
              canon.get(task["scene_id"]).data if kind.needs_scene else None)
    return kind.retrieve(d)


def _voice_a_line(ctx: Any, ep: int, i: int) -> None:
    """Accept a take of line `i` of episode `ep`'s last scene: the change a step makes before the
    agent plans the next one (a new record of the episode being written)."""
    from agent.voices import take_id

    line = ctx.canon.get(f"scene-ep{ep}-{SCENES}").data["lines"][i % LINES]
    Builder(ctx).accept("take", lambda: [ctx.canon.upsert("take", {
        "line_id": line["id"], "language": "en", "speaker": line["speaker"],
        "path": f"assets/audio/{line['id']}-en-v1.wav", "lipsync": "phonemes"},
        actor="auto", record_id=take_id(line["id"], "en"))])


def time_plan(ctx: Any, runs: int, ep: int) -> tuple[float, dict[str, float], Any, float]:
    """plan_next (every kind's planner in order) + the bible retrieval `propose` does for the task,
    each run after a take of episode `ep` is accepted (a step's own change); also the first plan
    of the process (nothing remembered yet: the session's first step, or the one after a change
    that concerns every episode, such as a character's edit)."""
    from agent import nodes
    from agent.kinds import KINDS
    from agent.plan_memo import forget

    runtime = SimpleNamespace(context=ctx)
    state = {"premise": "A shrine maiden hears rain spirits.", "stash": []}

    def plan() -> Any:
        task = nodes.plan_next(state, runtime).update["task"]
        if task is not None:
            _retrieve(ctx, task, state["premise"])
        return task

    forget(ctx.canon)
    cold, _ = _median_ms(plan, 1)
    times, task = [], None
    for i in range(runs):
        _voice_a_line(ctx, ep, i)
        t0 = time.perf_counter()
        task = plan()
        times.append(_ms(t0))
    total = statistics.median(times)
    parts = {}
    for name, kind in KINDS.items():   # each planner, until the one that found the task
        ms, found = _median_ms(lambda kind=kind: kind.plan(ctx.canon, ctx), runs)
        parts[f"plan:{name}"] = ms
        if found is not None:
            break
    if task is not None:
        parts["retrieve"] = _median_ms(lambda: _retrieve(ctx, task, state["premise"]), runs)[0]
    return total, {k: round(v, 2) for k, v in parts.items() if v >= 0.05}, task, cold


def time_commit(ctx: Any, ep: int) -> float:
    """Accept the shot plans of episode `ep`'s scenes through the real commit node; the median."""
    from agent import nodes

    runtime = SimpleNamespace(context=ctx)
    times = []
    for n in range(1, SCENES + 1):
        scene = ctx.canon.get(f"scene-ep{ep}-{n}")
        pending = {"kind": "shots", "proposal_id": uuid.uuid4().hex, "data": shot_plan(scene),
                   "actor": "auto", "decided": "accept", "retrieved": []}
        t0 = time.perf_counter()
        nodes.commit({"pending": pending, "notes": [], "premise": "p"}, runtime)
        times.append(_ms(t0))
    return statistics.median(times)


def time_view(project: Any, targets: Any, runs: int) -> tuple[float, dict[str, float], float]:
    """What ui/app.py's snapshot reads for every panel, through DirectorSession."""
    from ui.cards import bible_markdown, outline_markdown
    from ui.session import DirectorSession

    with DirectorSession(project, _StubModel(), targets=targets, actor="auto", painter=_StubPainter(),
                         voices=_StubVoices()) as s:
        s._bible_sync.join(120)   # the background index check, so it does not share the CPU
        parts: dict[str, list[float]] = {}

        def part(name: str, fn: Any) -> Any:
            t0 = time.perf_counter()
            out = fn()
            parts.setdefault(name, []).append(_ms(t0))
            return out

        def snapshot() -> None:
            part("view", s.view)
            records = part("records", s.records)
            part("record_choices", lambda: [rid for kind in ("outline", "beats", "scene", "shot", "panel")
                                            for rid in s.canon.ids(kind)])
            part("ledger_tail_200", lambda: s.ledger.tail(200))
            part("storyboard", lambda: s.storyboard(s.current_episode()))   # the picked episode, as the studio
            part("voices", s.voices)
            part("bible_markdown", lambda: bible_markdown(records))
            part("outline_markdown", lambda: outline_markdown(s.outline()))

        total, _ = _median_ms(snapshot, runs)
        whole_ledger, _ = _median_ms(s.ledger.entries, runs)
    return total, {k: round(statistics.median(v), 2) for k, v in parts.items()}, whole_ledger


def checkpoint_kb_per_message(folder: Path, messages: int, *, bounded: bool) -> float:
    """Total checkpoint file size / messages after `messages` chat messages, each exchange run as
    the director's graph does (respond, plan, propose, review: a checkpoint each, durability sync)."""
    from langgraph.graph import END, START, StateGraph

    from memory.checkpoints import open_checkpointer
    from memory.transcript import Transcript, bounded_messages, transcript_path, trim_checkpoints

    State = TypedDict("State", {   # the shape of agent.state.DirectorState
        "premise": str, "task": dict, "pending": dict, "stash": list, "notes": list,
        "messages": Annotated[list, bounded_messages if bounded else operator.add]}, total=False)

    def respond(state: State) -> dict:
        return {"messages": [{"role": "assistant", "content": "Noted: I will propose a change for that. " * 3}]}

    def plan(state: State) -> dict:
        return {"task": {"kind": "scene", "episode": 30, "number": 2, "target_id": "scene-ep30-2"}}

    def propose(state: State) -> dict:
        return {"pending": {"kind": "scene", "proposal_id": uuid.uuid4().hex, "warnings": [],
                            "data": {"title": "Scene 2", "lines": [{"speaker": "Aiko", "line": "The rain again."}] * 8}}}

    builder = StateGraph(State)
    for name, fn in (("respond", respond), ("plan", plan), ("propose", propose)):
        builder.add_node(name, fn)
    builder.add_edge(START, "respond")
    builder.add_edge("respond", "plan")
    builder.add_edge("plan", "propose")
    builder.add_edge("propose", END)
    path = folder / "state" / "checkpoints.sqlite"
    saver = open_checkpointer(path)
    graph = builder.compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "writers-room"}}
    transcript = Transcript(transcript_path(folder)) if bounded else None
    try:
        for i in range(messages // 2):
            graph.invoke({"messages": [{"role": "user", "content": f"make scene 2 darker, take {i}"}]}, config,
                         durability="sync")
            if transcript is not None:
                transcript.record(graph.get_state(config).values["messages"])
                trim_checkpoints(saver, "writers-room")
        saver.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        if transcript is not None:
            transcript.close()
        saver.conn.close()
    size = sum(p.stat().st_size for p in path.parent.glob("checkpoints.sqlite*"))
    return size / 1024 / messages


def time_continuity(canon: Any, ep: int) -> tuple[float, int]:
    """p95 of check_scene (facts loaded from canon each time) over every scene, as if in episode `ep`."""
    from memory.continuity import all_facts, check_scene

    times, warnings = [], 0
    for scene in canon.list("scene"):
        t0 = time.perf_counter()
        warnings += len(check_scene(all_facts(canon), ep, {**scene.data, "number": 1}))
        times.append(_ms(t0))
    times.sort()
    return times[min(len(times) - 1, int(len(times) * 0.95))], warnings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=30)
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5, help="repetitions per timing (median)")
    ap.add_argument("--keep", type=Path, help="build the project here and keep it (default: a temp folder)")
    args = ap.parse_args()

    from agent.context import DirectorContext, Targets
    from memory.bible import Bible, load_embedder
    from memory.canon import Canon
    from memory.ledger import Ledger
    from memory.project import create_project

    load_embedder()
    with tempfile.TemporaryDirectory() as tmp:
        parent = args.keep or Path(tmp)
        parent.mkdir(parents=True, exist_ok=True)
        project = create_project(parent, f"series-bench-{uuid.uuid4().hex[:6]}")
        targets = Targets(characters=len(CAST), locations=len(PLACES), props=len(PROPS),
                          episodes=args.episodes, scenes=SCENES)
        canon, ledger = Canon(project.canon_path), Ledger(project.ledger_path)
        bible = Bible(project.chroma_dir)
        ctx = DirectorContext(canon=canon, bible=bible, ledger=ledger, llm=_StubModel(), targets=targets,
                              project_root=project.root, painter=_StubPainter(), voices=_StubVoices())
        build = Builder(ctx)
        t0 = time.perf_counter()
        build.base(args.episodes)
        build.writing(1)
        bible.rebuild(canon)
        plan_ep1, parts_ep1, task1, cold_ep1 = time_plan(ctx, args.runs, 1)
        print(f"episode 1: plan {plan_ep1:.1f} ms for {task1} {parts_ep1} (first plan {cold_ep1:.1f} ms)",
              flush=True)
        build.production(1)
        for ep in range(2, args.episodes):
            build.writing(ep)
            build.production(ep)
            if ep % 5 == 0:
                print(f"built episode {ep} ({build.commits} commits, {time.perf_counter() - t0:.0f} s)", flush=True)
        build.writing(args.episodes)
        t1 = time.perf_counter()
        indexed = bible.rebuild(canon)
        print(f"indexed {indexed} records in {time.perf_counter() - t1:.1f} s", flush=True)
        counts = {kind: len(canon.list(kind)) for kind in ("scene", "shot", "panel", "take", "fact")}
        counts["lines"] = sum(len(s.data.get("lines", [])) for s in canon.list("scene"))
        counts["ledger_entries"] = len(ledger.entries())
        print(f"series: {counts}, built in {time.perf_counter() - t0:.0f} s", flush=True)
        plan_ep30, parts_ep30, task30, cold_ep30 = time_plan(ctx, args.runs, args.episodes)
        print(f"episode {args.episodes}: plan {plan_ep30:.1f} ms for {task30} {parts_ep30} (first plan "
              f"{cold_ep30:.1f} ms)", flush=True)
        commit_ep30 = time_commit(ctx, args.episodes)
        print(f"episode {args.episodes}: commit of a shot plan {commit_ep30:.1f} ms", flush=True)
        check_p95, found = time_continuity(canon, args.episodes + 1)
        print(f"continuity check p95 {check_p95:.2f} ms ({found} warnings over {counts['scene']} scenes)", flush=True)
        bible.close()
        canon.close()
        view_ep30, view_parts, whole_ledger = time_view(project, targets, args.runs)
        print(f"view {view_ep30:.1f} ms {view_parts}; reading the whole ledger instead of its tail: "
              f"{whole_ledger:.1f} ms", flush=True)
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            kb = checkpoint_kb_per_message(Path(a), args.messages, bounded=True)
            kb_unbounded = checkpoint_kb_per_message(Path(b), args.messages, bounded=False)
        print(f"checkpoints: {kb:.2f} kB/message bounded + trimmed, {kb_unbounded:.1f} kB/message with the "
              f"whole chat in state", flush=True)
        print(json.dumps({
            "plan_ms_ep1": round(plan_ep1, 2), "plan_ms_ep30": round(plan_ep30, 2),
            "plan_ratio": round(plan_ep30 / plan_ep1, 2) if plan_ep1 else None,
            "plan_ms_first_ep1": round(cold_ep1, 2), "plan_ms_first_ep30": round(cold_ep30, 2),
            "commit_ms_ep30": round(commit_ep30, 2), "view_ms_ep30": round(view_ep30, 2),
            "checkpoint_kb_per_message": round(kb, 3),
            "checkpoint_kb_per_message_unbounded": round(kb_unbounded, 2),
            "continuity_check_ms_p95": round(check_p95, 2),
            "plan_parts_ep1_ms": parts_ep1, "plan_parts_ep30_ms": parts_ep30, "view_parts_ms": view_parts,
            "ledger_full_read_ms": round(whole_ledger, 2), "counts": counts,
            "load_avg_1m": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
