"""SMPL body and fitting: generated joints -> SMPL pose parameters (-> mesh vertices).

numpy only (no torch, no scipy, no bpy), so the Blender add-on can import ``smpl_file`` and
``rest_skeleton`` to build its armature and mesh. Entry points: ``fitter.fit_joints`` (one clip or
a batch), ``results.fit_result_arrays`` (the shared result format), ``smpl_file.load_smpl``,
``lbs.vertices``; ``python -m backend fit`` / ``smpl-check`` on the command line.
"""
