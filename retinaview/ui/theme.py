"""A dark neutral look: photographs are judged against a dark grey, never against white, and a projector
shows the grades and numbers at a readable size.

Qt's own file dialog (the one retinaview uses) draws its toolbar icons as dark glyphs from the style: its
tool buttons get a light face and little padding, or the icons vanish into the dark theme.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication

BACKGROUND = "#1b1d21"
IMAGE_BACKGROUND = "#0f1012"
PANEL = "#23262b"
RAISED = "#2c3036"
BORDER = "#3a3f47"
TEXT = "#e6e8eb"
MUTED = "#9aa1ab"
ACCENT = "#4fa3ff"
# Grade badges: calm for no DR, warmer as the disease advances.
GRADE_COLOURS = ("#7bd88f", "#d7e36a", "#ffb454", "#ff7a59", "#e05ad6")

STYLE = f"""
QWidget {{ color: {TEXT}; }}
QMainWindow, QDialog {{ background: {BACKGROUND}; }}
QMainWindow::separator {{ background: {BORDER}; width: 1px; height: 1px; }}
QSplitter::handle {{ background: {BACKGROUND}; }}
QSplitter::handle:horizontal {{ width: 4px; }}
QMenuBar {{ background: {PANEL}; border-bottom: 1px solid {BORDER}; }}
QMenuBar::item {{ padding: 4px 10px; background: transparent; }}
QMenuBar::item:selected {{ background: {RAISED}; }}
QMenu {{ background: {PANEL}; border: 1px solid {BORDER}; padding: 4px; }}
QMenu::item {{ padding: 5px 24px 5px 20px; }}
QMenu::item:selected {{ background: {ACCENT}; color: white; }}
QMenu::separator {{ height: 1px; background: {BORDER}; margin: 4px 6px; }}
QStatusBar {{ background: {PANEL}; border-top: 1px solid {BORDER}; color: {MUTED}; }}
QStatusBar QLabel {{ color: {MUTED}; padding: 0 8px; }}
QFrame#panel, QWidget#panel {{ background: {PANEL}; }}
QGroupBox {{
    border: 1px solid {BORDER}; border-radius: 6px; margin-top: 14px; padding: 10px 8px 8px 8px;
    background: {PANEL};
}}
QGroupBox::title {{
    subcontrol-origin: margin; left: 10px; padding: 0 4px; color: {MUTED}; font-weight: 600;
}}
QLabel#panelTitle {{ font-size: 11pt; font-weight: 600; }}
QLabel#muted {{ color: {MUTED}; }}
QLabel#gradeBig {{ font-size: 20pt; font-weight: 700; }}
QLabel#value {{ font-weight: 600; min-width: 44px; }}
QLabel#notice {{
    background: #5a2a22; color: #ffe0d6; border: 1px solid #a8473a; border-radius: 6px; padding: 6px 10px;
}}
QComboBox, QPushButton, QToolButton {{
    background: {RAISED}; border: 1px solid {BORDER}; border-radius: 5px; padding: 4px 8px;
    min-height: 20px;
}}
QComboBox:hover, QPushButton:hover, QToolButton:hover {{ border-color: {ACCENT}; }}
QComboBox QAbstractItemView {{
    background: {PANEL}; border: 1px solid {BORDER}; selection-background-color: {ACCENT};
}}
QPushButton:checked, QToolButton:checked {{ background: {ACCENT}; border-color: {ACCENT}; color: white; }}
QPushButton:disabled {{ color: {MUTED}; }}
QCheckBox::indicator, QRadioButton::indicator {{ width: 15px; height: 15px; }}
QSlider::groove:horizontal {{ height: 4px; background: {BORDER}; border-radius: 2px; }}
QSlider::sub-page:horizontal {{ background: {ACCENT}; border-radius: 2px; }}
QSlider::handle:horizontal {{
    background: {TEXT}; width: 14px; height: 14px; margin: -6px 0; border-radius: 7px;
}}
QTableView {{
    background: {PANEL}; alternate-background-color: {RAISED}; border: none;
    selection-background-color: #2f4f75; selection-color: white;
}}
QTableView::item {{ padding: 2px 4px; border-bottom: 1px solid {BACKGROUND}; }}
QHeaderView::section {{
    background: {PANEL}; color: {MUTED}; border: none; border-bottom: 1px solid {BORDER};
    padding: 4px; font-weight: 600;
}}
QProgressBar {{
    background: {RAISED}; border: 1px solid {BORDER}; border-radius: 4px; text-align: center;
    max-height: 14px; min-width: 160px;
}}
QProgressBar::chunk {{ background: {ACCENT}; border-radius: 3px; }}
QScrollBar:vertical {{ background: {PANEL}; width: 10px; }}
QScrollBar::handle:vertical {{ background: {BORDER}; border-radius: 4px; min-height: 24px; }}
QScrollBar::add-line, QScrollBar::sub-line {{ height: 0; width: 0; }}
QToolTip {{ background: {RAISED}; color: {TEXT}; border: 1px solid {BORDER}; }}
QFileDialog QToolButton {{
    background: #c9ced6; border: 1px solid {BORDER}; border-radius: 4px; padding: 2px; min-height: 0;
}}
QFileDialog QToolButton:disabled {{ background: #6b717a; }}
"""


def apply_theme(app: QApplication) -> None:
    """Fusion style with a dark palette and the stylesheet above."""
    app.setStyle("Fusion")
    pal = QPalette()
    roles = {
        QPalette.ColorRole.Window: BACKGROUND,
        QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: PANEL,
        QPalette.ColorRole.AlternateBase: RAISED,
        QPalette.ColorRole.Text: TEXT,
        QPalette.ColorRole.Button: RAISED,
        QPalette.ColorRole.ButtonText: TEXT,
        QPalette.ColorRole.Highlight: ACCENT,
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.ToolTipBase: RAISED,
        QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.PlaceholderText: MUTED,
        QPalette.ColorRole.Link: ACCENT,
    }
    for role, colour in roles.items():
        pal.setColor(role, QColor(colour))
    for role in (
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
        QPalette.ColorRole.WindowText,
    ):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor(MUTED))
    app.setPalette(pal)
    font = QFont(app.font())
    font.setPointSizeF(max(font.pointSizeF(), 10.0))
    app.setFont(font)
    app.setStyleSheet(STYLE)
