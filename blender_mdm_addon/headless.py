"""Generate, key a result file, or edit / extend a rig's animation without a window; the panel's operators.

    blender --background [scene.blend] --python <addon>/headless.py -- --prompt "a person jumps" \
        --seconds 3 --seed 1 --num-samples 2 --save out.blend --preview out.png
    blender -b --python <addon>/headless.py -- --result motion.npz --fps 30 --save out.blend
    blender -b scene.blend --python <addon>/headless.py -- --edit 40 80 --rig Armature \
        --edit-mode UPPER_BODY --prompt "a person waves" --save edited.blend
    python <addon>/headless.py -- --open scene.blend --edit 40 80 ...   # bpy as a module
    python <addon>/headless.py -- --open walk.blend --extend 3 --prompt "a person sits down" --save sit.blend
    python <addon>/headless.py -- ...            # the same, with bpy installed as a Python module

Backend settings default to the add-on preferences; --python/--model-dir/... override them for
this run. Prints one JSON line ``MDM_RESULT {...}`` (rig, actions, frame range) for scripts.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import bpy


def parse_args(argv: list[str]) -> argparse.Namespace:
    argv = argv[argv.index("--") + 1:] if "--" in argv else []
    p = argparse.ArgumentParser(prog="headless.py", description=__doc__.splitlines()[0])
    p.add_argument("--prompt", help="text prompt (generate)")
    p.add_argument("--upper-prompt", default="",
                   help="generate: a second action for spine, arms and head (e.g. a wave while walking)")
    p.add_argument("--result", help="key this result .npz instead of generating")
    p.add_argument("--edit", nargs=2, type=int, metavar=("START", "END"),
                   help="regenerate frames START..END (inclusive) of an SMPL rig's animation (--prompt optional)")
    p.add_argument("--extend", type=float, metavar="SECONDS",
                   help="continue an SMPL rig's animation SECONDS past its last key (--prompt optional)")
    p.add_argument("--edit-mode", default="IN_BETWEEN", choices=("IN_BETWEEN", "UPPER_BODY"))
    p.add_argument("--rig", help="the SMPL rig to edit (default: the active object)")
    p.add_argument("--open", help="open this .blend first (bpy as a module; the blender binary takes it "
                                  "before --python)")
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--guidance", type=float, default=2.5)
    p.add_argument("--steps", type=int, default=0, help="diffusion steps (0 = the model's own)")
    p.add_argument("--num-samples", type=int, default=1)
    p.add_argument("--output", default="ARMATURE", choices=("ARMATURE", "ARMATURE_MESH", "VERTEX"))
    p.add_argument("--target", default="NEW", choices=("NEW", "SELECTED"))
    p.add_argument("--start-frame", type=int, default=1)
    p.add_argument("--in-place", action="store_true",
                   help="root motion in place: no horizontal travel (height, turning and limbs kept)")
    p.add_argument("--loop", action="store_true",
                   help="key one seamless cycle that repeats (Cycles modifiers), e.g. for game locomotion")
    p.add_argument("--no-foot-lock", action="store_true",
                   help="key the raw generated motion (default: planted feet are pinned, see the panel's Foot Lock)")
    p.add_argument("--fps", type=float, help="set the scene frame rate first (default: keep the scene's)")
    p.add_argument("--python", help="backend python executable")
    p.add_argument("--model-dir", help="MDM checkpoint folder (empty: embedded demo model)")
    p.add_argument("--text-encoder-dir")
    p.add_argument("--smpl-dir")
    p.add_argument("--device", choices=("auto", "cuda", "cpu"))
    p.add_argument("--save", help="write the .blend here")
    p.add_argument("--preview", help="write a contact sheet PNG of the posed rig here")
    args = p.parse_args(argv)
    if args.edit and args.extend:
        p.error("give --edit START END or --extend SECONDS, not both")
    if args.edit or args.extend:
        if args.result:
            p.error("--edit and --extend work on the scene's rig; --result does not apply")
    elif bool(args.prompt) == bool(args.result):
        p.error("give exactly one of --prompt or --result (or --edit START END, or --extend SECONDS)")
    return args


def ensure_addon() -> str:
    """The add-on's module name: already enabled (installed extension), else enabled from here."""
    import addon_utils
    for module in addon_utils.modules():
        if module.__name__.endswith(("blender_mdm", "blender_mdm_addon")) and getattr(module, "bl_info", None):
            if addon_utils.check(module.__name__)[1]:
                return module.__name__
    here = Path(__file__).resolve().parent
    if str(here.parent) not in sys.path:
        sys.path.insert(0, str(here.parent))
    if addon_utils.enable(here.name, default_set=True, handle_error=None) is None:
        raise SystemExit(f"error: could not enable the add-on from {here}")
    return here.name


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.open:
        bpy.ops.wm.open_mainfile(filepath=str(Path(args.open).resolve()))
    name = ensure_addon()
    prefs = bpy.context.preferences.addons[name].preferences
    for arg, pref in (("python", "python_exe"), ("model_dir", "model_dir"),
                      ("text_encoder_dir", "text_encoder_dir"), ("smpl_dir", "smpl_dir"), ("device", "device")):
        if getattr(args, arg) is not None:
            setattr(prefs, pref, getattr(args, arg))
    scene = bpy.context.scene
    if args.fps:
        scene.render.fps, scene.render.fps_base = round(args.fps), round(args.fps) / args.fps
    before = set(bpy.data.actions)
    root_motion = 'IN_PLACE' if args.in_place else 'WORLD'
    try:
        if args.edit or args.extend:
            rig = bpy.data.objects.get(args.rig) if args.rig else bpy.context.view_layer.objects.active
            if args.rig and rig is None:
                print(f"error: no object named '{args.rig}' in the scene", file=sys.stderr)
                return 2
            bpy.context.view_layer.objects.active = rig
            start, end = args.edit or (1, 2)        # --extend takes the range from the keys
            bpy.ops.mdm.edit_range(frame_start=start, frame_end=end, mode=args.edit_mode,
                                   extend_seconds=args.extend or 0.0,
                                   prompt=args.prompt or "", seed=args.seed, guidance=args.guidance, steps=args.steps,
                                   foot_lock=not args.no_foot_lock, blocking=True)
        elif args.result:
            bpy.ops.mdm.import_result(filepath=str(Path(args.result).resolve()), output=args.output,
                                      target=args.target, start_frame=args.start_frame, root_motion=root_motion,
                                      loop=args.loop)
        else:
            bpy.ops.mdm.generate(prompt=args.prompt, seconds=args.seconds, seed=args.seed, guidance=args.guidance,
                                 steps=args.steps, num_samples=args.num_samples, output=args.output,
                                 target=args.target, start_frame=args.start_frame, root_motion=root_motion,
                                 loop=args.loop, foot_lock=not args.no_foot_lock, upper_prompt=args.upper_prompt,
                                 blocking=True)
    except RuntimeError as exc:  # the operator's report: already a user-facing message
        print(f"error: {str(exc).strip().removeprefix('Error: ')}", file=sys.stderr)
        return 2
    actions = [a for a in bpy.data.actions if a not in before]
    rig = bpy.context.view_layer.objects.active
    recipe = json.loads(actions[0]["mdm_recipe"]) if actions else {}
    summary = {"rig": rig.name if rig else None, "actions": [a.name for a in actions],
               "frame_range": list(actions[0]["mdm_frame_range"]) if actions else None, "fps": scene.render.fps,
               "loop": bool(recipe.get("loop")),
               **{key: recipe.get(key) for key in ("root_motion", "foot_lock", "upper_prompt", "reworded",
                                                  "unseen_words")}}
    if args.edit or args.extend:
        summary["edit_range"] = list(actions[0]["mdm_edit_range"])
    if args.preview and rig is not None and actions:
        from importlib import import_module
        preview = import_module(f"{name}.rig_preview")
        first, last = (int(x) for x in actions[0]["mdm_frame_range"])
        summary["preview"] = str(preview.write_rig_preview(bpy.context, rig, Path(args.preview).resolve(),
                                                           (first, last)))
    if args.save:
        bpy.ops.wm.save_as_mainfile(filepath=str(Path(args.save).resolve()))
        summary["saved"] = str(Path(args.save).resolve())
    print("MDM_RESULT " + json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    code = main(sys.argv)
    if code:
        sys.exit(code)
