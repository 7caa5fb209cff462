"""Motion math shared by the backend and the Blender add-on: numpy only, no torch, no bpy."""
