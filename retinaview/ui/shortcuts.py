"""The one table of keyboard shortcuts: the main window binds its actions from it and Help shows it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shortcut:
    action: str
    keys: tuple[str, ...]
    description: str
    group: str


SHORTCUTS: tuple[Shortcut, ...] = (
    Shortcut("open_folder", ("Ctrl+O",), "Open a folder of images", "File"),
    Shortcut("open_image", ("Ctrl+Shift+I",), "Open one image", "File"),
    Shortcut("open_model", ("Ctrl+Shift+O",), "Open a model file", "File"),
    Shortcut("export_png", ("Ctrl+E",), "Export the view as on screen (PNG, with legend)", "File"),
    Shortcut(
        "export_map_png", ("Ctrl+Alt+E",), "Export the map alone over the photograph (PNG)", "File"
    ),
    Shortcut("export_gif", ("Ctrl+Shift+G",), "Export an animated GIF (photograph / map)", "File"),
    Shortcut("export_map", ("Ctrl+Shift+E",), "Export the map (.npy / .csv)", "File"),
    Shortcut("export_report", ("Ctrl+P",), "Export a report of the image (PDF)", "File"),
    Shortcut(
        "export_patient_report",
        ("Ctrl+Shift+P",),
        "Export a report of the patient's two eyes (PDF)",
        "File",
    ),
    Shortcut("quit", ("Ctrl+Q",), "Quit", "File"),
    Shortcut("next_image", ("Right", "Down"), "Next image", "Browse"),
    Shortcut("prev_image", ("Left", "Up"), "Previous image", "Browse"),
    Shortcut("first_image", ("Home",), "First image", "Browse"),
    Shortcut("last_image", ("End",), "Last image", "Browse"),
    Shortcut("score_folder", ("Ctrl+R",), "Grade every image of the folder", "Browse"),
    Shortcut("cancel_scoring", ("Esc",), "Stop grading the folder", "Browse"),
    Shortcut("toggle_overlay", ("Space",), "Overlay on / off", "View"),
    Shortcut("toggle_green", ("G",), "Green-channel view on / off", "View"),
    Shortcut("toggle_grid", ("A",), "All classes grid on / off", "View"),
    Shortcut("predicted_class", ("P",), "Show the predicted class", "View"),
    Shortcut("class_0", ("0",), "Show class 0 (review mode: grade)", "View"),
    Shortcut("class_1", ("1",), "Show class 1", "View"),
    Shortcut("class_2", ("2",), "Show class 2", "View"),
    Shortcut("class_3", ("3",), "Show class 3", "View"),
    Shortcut("class_4", ("4",), "Show class 4", "View"),
    Shortcut("threshold_up", ("]",), "Threshold +0.1 sigma", "View"),
    Shortcut("threshold_down", ("[",), "Threshold -0.1 sigma", "View"),
    Shortcut("cycle_mode", ("M",), "For / against / both", "View"),
    Shortcut("toggle_smooth", ("S",), "Smoothed / raw map", "View"),
    Shortcut("cycle_kind", ("K",), "Total / input-dependent / constant map", "View"),
    Shortcut("toggle_colormap", ("C",), "Next colour palette", "View"),
    Shortcut("reset_zoom", ("F",), "Fit the photograph in the view", "View"),
    Shortcut("reset_view", ("Ctrl+Shift+R",), "Reset the view settings to the defaults", "View"),
    Shortcut("show_patient", ("Ctrl+Shift+B",), "Both eyes of the patient side by side", "View"),
    Shortcut("toggle_inspector", ("L",), "Layer inspector on / off", "Layers"),
    Shortcut("layer_up", ("PgUp",), "Inspector: the layer above (towards the output)", "Layers"),
    Shortcut("layer_down", ("PgDown",), "Inspector: the layer below (towards the input)", "Layers"),
    Shortcut("walk_play", ("W",), "Inspector: play / pause the walk-through", "Layers"),
    Shortcut("toggle_space", ("H",), "Inspector: input space / hidden space", "Layers"),
    Shortcut(
        "toggle_review",
        ("Ctrl+Shift+V",),
        "Review mode on / off (grade each image yourself)",
        "Review",
    ),
    Shortcut("review_grade", ("0…4",), "Review mode: your grade of the image", "Review"),
    Shortcut("review_ungradable", ("U",), "Review mode: ungradable on / off", "Review"),
    Shortcut("review_confidence", ("Ctrl+1…5",), "Review mode: your confidence, 1 to 5", "Review"),
    Shortcut("review_commit", ("Enter",), "Review mode: save the grade, next image", "Review"),
    Shortcut("review_undo", ("Ctrl+Z",), "Review mode: undo the last saved change", "Review"),
    Shortcut("show_agreement", ("Ctrl+Shift+A",), "Review agreement panel on / off", "Review"),
    Shortcut("vessels_panel", ("V",), "Vessels panel: vessel map, Grad-CAM per layer", "Vessels"),
    Shortcut(
        "vessel_underlay", ("Shift+V",), "Vessel map under the class maps on / off", "Vessels"
    ),
    Shortcut("train_model", ("Ctrl+T",), "Train a model", "Tools"),
    Shortcut("show_shortcuts", ("F1",), "This table", "Help"),
)

BY_ACTION = {s.action: s for s in SHORTCUTS}


def keys_for(action: str) -> tuple[str, ...]:
    return BY_ACTION[action].keys


def as_html() -> str:
    """The table as HTML for the Help dialog."""
    rows = []
    group = None
    for s in SHORTCUTS:
        if s.group != group:
            group = s.group
            rows.append(f"<tr><td colspan='2' style='padding-top:10px'><b>{group}</b></td></tr>")
        keys = " / ".join(f"<code>{k}</code>" for k in s.keys)
        rows.append(f"<tr><td style='padding-right:24px'>{keys}</td><td>{s.description}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"
