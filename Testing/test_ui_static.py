"""Static checks of the Slicer modules, which cannot run here (they need Qt and the Slicer application).

The module files are parsed with ``ast``, never imported. Checked: every ``.ui`` file is Qt Designer
XML for its module; every widget the Python code names (``self.ui.x`` and the widget-name tables) is
in the ``.ui`` file; every ``SlicerParameterName`` is a parameter-node field of a type its widget can
show; each module's ``CMakeLists.txt`` lists exactly the Python files and resources on disk; the
top-level ``CMakeLists.txt`` is a complete extension description; no module installs or imports its
heavy dependencies at import time.
"""

from __future__ import annotations

import ast
import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = ("SIRTDosimetry", "SIRTDosiomics", "SIRTResponse")
# Per-module pytest suites (<Module>/Testing/Python) are not installed with the extension.
IGNORED_PARTS = {"__pycache__", "Testing"}

# Widget class -> annotation types the parameterNodeWrapper can connect it to ("enum": an Enum subclass
# defined in the module file; "vtkMRML": a node class).
CONNECTABLE = {
    "qMRMLNodeComboBox": {"vtkMRML"},
    "QComboBox": {"enum"},
    "QCheckBox": {"bool"},
    "QDoubleSpinBox": {"float"},
    "QSpinBox": {"int"},
    "QLineEdit": {"str"},
}


WIDGET_NAME = re.compile(r"^[a-z][A-Za-z0-9]*(Selector|SpinBox|ComboBox|CheckBox|LineEdit|Button|ProgressBar|Label)$")
"""A string constant of this form in a module file names a widget of its .ui file."""


def ui_path(module: str) -> Path:
    return ROOT / module / "Resources" / "UI" / f"{module}.ui"


def module_tree(module: str) -> ast.Module:
    return ast.parse((ROOT / module / f"{module}.py").read_text(encoding="utf-8"))


def ui_widgets(module: str) -> dict[str, ET.Element]:
    root = ET.parse(ui_path(module)).getroot()
    return {w.get("name"): w for w in root.iter("widget")}


def ui_parameter_names(module: str) -> dict[str, str]:
    """SlicerParameterName → widget class."""
    out = {}
    for name, widget in ui_widgets(module).items():
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                out[prop.findtext("string")] = widget.get("class")
    return out


def wrapper_fields(tree: ast.Module) -> dict[str, ast.expr]:
    """Fields (name → annotation) of the class decorated with ``parameterNodeWrapper``."""
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and any(
            (isinstance(d, ast.Name) and d.id == "parameterNodeWrapper") for d in node.decorator_list
        ):
            return {s.target.id: s.annotation for s in node.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)}
    raise AssertionError("no @parameterNodeWrapper class")


def enum_classes(tree: ast.Module) -> set[str]:
    return {
        n.name for n in tree.body
        if isinstance(n, ast.ClassDef) and any(ast.unparse(b) in ("enum.Enum", "Enum") for b in n.bases)
    }


def annotation_kind(annotation: ast.expr, enums: set[str]) -> str:
    if isinstance(annotation, ast.Subscript) and ast.unparse(annotation.value) == "Annotated":
        annotation = annotation.slice.elts[0] if isinstance(annotation.slice, ast.Tuple) else annotation.slice
    text = ast.unparse(annotation)
    if text in enums:
        return "enum"
    if text.startswith("vtkMRML"):
        return "vtkMRML"
    return text


def used_ui_names(tree: ast.Module) -> set[str]:
    """``self.ui.<name>`` attributes, plus widget names in module-level ``*_WIDGETS`` tables."""
    names = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "ui"
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id == "self"
        ):
            names.add(node.attr)
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id.endswith("_WIDGETS") for t in node.targets):
            if isinstance(node.value, ast.Dict):
                names.update(v.value for v in node.value.values if isinstance(v, ast.Constant))
    # widget names written as strings (loops over getattr(self.ui, name)), recognised by their suffix
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and WIDGET_NAME.match(node.value):
            names.add(node.value)
    # getattr(self.ui, "literal") too
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr" and len(node.args) >= 2:
            target, name = node.args[0], node.args[1]
            if ast.unparse(target) == "self.ui" and isinstance(name, ast.Constant):
                names.add(name.value)
    return names


def cmake_list(text: str, variable: str, module: str) -> list[str]:
    match = re.search(rf"set\(\s*{variable}\b(.*?)\)", text, re.S)
    assert match, f"{variable} not set"
    return [item.replace("${MODULE_NAME}", module) for item in match.group(1).split()]


def files_on_disk(module: str) -> tuple[set[str], set[str]]:
    base = ROOT / module
    scripts, resources = set(), set()
    for path in base.rglob("*"):
        relative = path.relative_to(base)
        if path.is_dir() or IGNORED_PARTS & set(relative.parts) or relative.as_posix() == "CMakeLists.txt":
            continue
        if path.suffix in (".pyc", ".pyo"):
            continue
        (scripts if path.suffix == ".py" else resources).add(relative.as_posix())
    return scripts, resources


# --- .ui files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("module", MODULES)
def test_ui_file_is_qt_designer_xml_for_its_module(module):
    root = ET.parse(ui_path(module)).getroot()
    assert root.tag == "ui" and root.get("version") == "4.0"
    assert root.findtext("class") == module
    top = root.find("widget")
    assert top.get("class") == "qMRMLWidget" and top.get("name") == module
    names = [w.get("name") for w in root.iter("widget")]
    assert len(names) == len(set(names)), "widget names must be unique"
    custom = {c.findtext("class") for c in root.iter("customwidget")}
    used_custom = {w.get("class") for w in root.iter("widget") if not w.get("class").startswith("Q")}
    assert used_custom <= custom, f"custom widgets without a <customwidget> entry: {used_custom - custom}"
    # every MRML widget gets the scene from the top-level qMRMLWidget
    mrml = {w.get("name") for w in root.iter("widget") if w.get("class") in ("qMRMLNodeComboBox", "qMRMLSegmentSelectorWidget")}
    connected = {
        c.findtext("receiver") for c in root.iter("connection")
        if c.findtext("signal") == "mrmlSceneChanged(vtkMRMLScene*)" and c.findtext("slot") == "setMRMLScene(vtkMRMLScene*)"
    }
    assert mrml <= connected, f"MRML widgets not connected to the scene: {mrml - connected}"
    for widget in ("applyButton", "progressBar", "statusLabel"):
        assert widget in names


@pytest.mark.parametrize("module", MODULES)
def test_every_widget_the_module_uses_is_in_its_ui_file(module):
    used = used_ui_names(module_tree(module))
    assert used, "the module uses no widget of its .ui file?"
    missing = used - set(ui_widgets(module))
    assert not missing, f"{module}.py uses widgets missing from {module}.ui: {sorted(missing)}"


@pytest.mark.parametrize("module", MODULES)
def test_parameter_names_in_ui_are_parameter_node_fields_of_a_matching_type(module):
    tree = module_tree(module)
    fields = wrapper_fields(tree)
    enums = enum_classes(tree)
    for name, widget_class in ui_parameter_names(module).items():
        assert name in fields, f"{module}.ui: SlicerParameterName {name!r} is not a parameter-node field"
        kind = annotation_kind(fields[name], enums)
        assert kind in CONNECTABLE[widget_class], f"{name}: a {widget_class} cannot show a {kind}"


def test_dosimetry_parameter_node_holds_every_dose_setting():
    from SIRTDosimetryLib.mrml.logic import DoseSettings

    fields = wrapper_fields(module_tree("SIRTDosimetry"))
    missing = [DoseSettings.camel_case(f) for f in DoseSettings.field_names() if DoseSettings.camel_case(f) not in fields]
    assert not missing, f"SIRTDosimetryParameterNode lacks {missing}"
    # Enum values in the module are the keys the engine accepts.
    tree = module_tree("SIRTDosimetry")
    values = {
        n.name: {ast.literal_eval(s.value) for s in n.body if isinstance(s, ast.Assign)}
        for n in tree.body if isinstance(n, ast.ClassDef) and n.name in enum_classes(tree)
    }
    from SIRTDosimetryLib.io.volumes import KNOWN_UNITS
    from SIRTDosimetryLib.nuclides import RADIONUCLIDES
    from SIRTDosimetryLib.structures import PARTIAL_VOXEL_MODES

    assert values["ImageUnits"] == {"auto", *KNOWN_UNITS}
    assert values["Radionuclide"] == set(RADIONUCLIDES)
    assert values["PartialVoxels"] == set(PARTIAL_VOXEL_MODES)


PHYSICS_NUMBER = re.compile(r"\d+(\.\d+)?\s*(h|Gy|g/mL|GBq|MBq|mm)\b|\w=\d")
"""A number with a physical unit (or a ``name=value`` example) in a widget text of a .ui file: a constant
duplicated where it cannot follow the code."""


@pytest.mark.parametrize("module", MODULES)
def test_ui_texts_quote_no_physics_constant(module):
    texts = [(w.get("name"), p.get("name"), p.findtext("string")) for w in ui_widgets(module).values() for p in w.findall("property")]
    quoted = [(name, prop, text) for name, prop, text in texts if text and PHYSICS_NUMBER.search(text)]
    assert not quoted, f"set these texts from the constants (SIRTDosimetryLib.mrml.widgets.physics_texts): {quoted}"


def test_physics_texts_are_made_from_the_constants_for_widgets_of_the_ui():
    from SIRTDosimetryLib.dose.radiobiology import NORMAL_LIVER_CHIESA_2015, TUMOUR_CHIESA_2015
    from SIRTDosimetryLib.mrml.widgets import physics_texts
    from SIRTDosimetryLib.nuclides import DENSITY_LUNG_G_PER_ML, Y90

    texts = physics_texts()
    widgets = ui_widgets("SIRTDosimetry")
    for name, properties in texts.items():
        assert name in widgets, f"{name} is not a widget of SIRTDosimetry.ui"
        assert not {p.get("name") for p in widgets[name].findall("property")} & set(properties), f"{name}: the .ui sets it too"
    assert f"({Y90.half_life_h:g} h for 90Y)" in texts["halfLifeSpinBox"]["toolTip"]
    for name, lq in (("tumourSegmentsSelector", TUMOUR_CHIESA_2015), ("normalLiverSegmentsSelector", NORMAL_LIVER_CHIESA_2015)):
        assert f"alpha/beta {lq.alpha_beta_gy:g} Gy, repair half-time {lq.repair_half_time_h:g} h" in texts[name]["toolTip"]
        assert "Chiesa" in texts[name]["toolTip"]
    assert f"({DENSITY_LUNG_G_PER_ML:g} g/mL)" in texts["lungSegmentsSelector"]["toolTip"]
    assert texts["segmentDensitiesLineEdit"]["placeholderText"] == f"lungs={DENSITY_LUNG_G_PER_ML:g}"
    translated = physics_texts(lambda text: "[fr] " + text)["halfLifeSpinBox"]["toolTip"]  # translated before the numbers go in
    assert translated.startswith("[fr] Physical half-life") and f"({Y90.half_life_h:g} h for 90Y)" in translated


def test_parameter_node_defaults_are_the_constants():
    """The parameter node is defined before the Lib can be imported in Slicer, so its defaults are literals:
    checked here against the constants they repeat."""
    from SIRTDosimetryLib.analysis.derived import DEFAULT_THRESHOLD_FRACTION
    from SIRTDosimetryLib.nuclides import DENSITY_SOFT_TISSUE_G_PER_ML

    tree = module_tree("SIRTDosimetry")
    defaults = {s.target.id: ast.literal_eval(s.value) for n in tree.body if isinstance(n, ast.ClassDef) for s in n.body
                if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name) and isinstance(s.value, ast.Constant)}
    assert defaults["densityGPerMl"] == DENSITY_SOFT_TISSUE_G_PER_ML
    assert defaults["thresholdFraction"] == DEFAULT_THRESHOLD_FRACTION


@pytest.mark.parametrize("module", MODULES)
def test_resource_paths_used_by_the_module_exist(module):
    tree = module_tree(module)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "resourcePath":
            relative = node.args[0].value
            assert (ROOT / module / "Resources" / relative).is_file(), relative


# --- module files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("module", MODULES)
def test_module_file_has_the_slicer_classes_and_metadata(module):
    tree = module_tree(module)
    classes = {n.name: [ast.unparse(b) for b in n.bases] for n in tree.body if isinstance(n, ast.ClassDef)}
    assert "ScriptedLoadableModule" in classes[module]
    assert "ScriptedLoadableModuleWidget" in classes[f"{module}Widget"]
    assert "ScriptedLoadableModuleLogic" in classes[f"{module}Logic"]
    assert "ScriptedLoadableModuleTest" in classes[f"{module}Test"]
    source = (ROOT / module / f"{module}.py").read_text(encoding="utf-8")
    assert '"Nuclear Medicine"' in source and "helpText" in source and "acknowledgementText" in source
    assert "References" in source and "slicer.util.loadUI" in source and "childWidgetVariables" in source


@pytest.mark.parametrize("module", MODULES)
def test_no_dependency_is_imported_or_installed_at_import_time(module):
    """Top-level imports are Slicer's own, the standard library and the stdlib-only GUI helpers; the Lib
    packages (which need pynrrd, scipy, pyradiomics...) are imported inside functions, after
    ``ensureDependencies``."""
    tree = module_tree(module)
    allowed = {"enum", "logging", "tempfile", "typing", "qt", "ctk", "vtk", "slicer", "os", "unittest"}
    light = {"SIRTDosimetryLib.mrml.widgets"}  # GUI helpers: standard library only
    for node in tree.body:
        if isinstance(node, ast.Import):
            roots = {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots = {(node.module or "").split(".")[0]} if node.module not in light else set()
        else:
            continue
        assert roots <= allowed, f"{module}.py imports {roots - allowed} at module level"
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    install_calls = [c for c in calls if isinstance(c.func, ast.Attribute) and c.func.attr in ("pip_install", "pip_ensure")]
    assert not install_calls, "install through SIRTDosimetryLib.mrml.dependencies.ensure_requirements (asks first)"
    assert "ensureDependencies" in {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}


# --- CMake ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", MODULES)
def test_module_cmakelists_lists_every_file(module):
    text = (ROOT / module / "CMakeLists.txt").read_text(encoding="utf-8")
    assert re.search(rf"set\(MODULE_NAME {module}\)", text)
    scripts = cmake_list(text, "MODULE_PYTHON_SCRIPTS", module)
    resources = cmake_list(text, "MODULE_PYTHON_RESOURCES", module)
    on_disk_scripts, on_disk_resources = files_on_disk(module)
    def lines(items):
        return "\n".join(f"  {i.replace(module, '${MODULE_NAME}')}" for i in sorted(items))
    assert set(scripts) == on_disk_scripts, (
        f"{module}/CMakeLists.txt MODULE_PYTHON_SCRIPTS is out of date.\nadd:\n{lines(on_disk_scripts - set(scripts))}\n"
        f"remove:\n{lines(set(scripts) - on_disk_scripts)}"
    )
    assert set(resources) == on_disk_resources, (
        f"{module}/CMakeLists.txt MODULE_PYTHON_RESOURCES is out of date.\nadd:\n{lines(on_disk_resources - set(resources))}\n"
        f"remove:\n{lines(set(resources) - on_disk_resources)}"
    )
    assert len(scripts) == len(set(scripts)) and len(resources) == len(set(resources)), "duplicated entries"
    assert "slicerMacroBuildScriptedModule(" in text and "RESOURCES ${MODULE_PYTHON_RESOURCES}" in text
    assert re.search(r"if\(BUILD_TESTING\).*slicer_add_python_unittest\(SCRIPT \$\{MODULE_NAME\}\.py\)", text, re.S)


def test_top_level_cmakelists_describes_the_extension():
    text = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    assert re.search(r"^cmake_minimum_required\(VERSION [0-9.]+", text, re.M)
    assert re.search(r"^project\(SlicerSIRT\)", text, re.M)
    for variable in ("HOMEPAGE", "CATEGORY", "CONTRIBUTORS", "DESCRIPTION", "ICONURL", "SCREENSHOTURLS", "DEPENDS"):
        assert re.search(rf'^set\(EXTENSION_{variable} "[^"]+"\)', text, re.M), variable
    assert 'set(EXTENSION_CATEGORY "Nuclear Medicine")' in text
    # pyradiomics in Slicer is SlicerRadiomics' build (no compiler needed on the user's machine)
    assert 'set(EXTENSION_DEPENDS "SlicerRadiomics")' in text
    order = [text.index(s) for s in ("find_package(Slicer REQUIRED)", "include(${Slicer_USE_FILE})")]
    order += [text.index(f"add_subdirectory({m})") for m in MODULES]
    order += [text.index(s) for s in ("include(${Slicer_EXTENSION_GENERATE_CONFIG})", "include(${Slicer_EXTENSION_CPACK})")]
    assert order[:2] == sorted(order[:2]) and order[1] < min(order[2:5]) and max(order[2:5]) < order[5] < order[6]


@pytest.mark.parametrize("module", MODULES)
def test_icon_is_a_128_pixel_png(module):
    data = (ROOT / module / "Resources" / "Icons" / f"{module}.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == (128, 128)


def test_sirt_cmakelists_lists_every_file():
    text = (ROOT / "sirt" / "CMakeLists.txt").read_text(encoding="utf-8")
    listed = re.search(r"set\(\s*SIRT_PYTHON_SCRIPTS\b(.*?)\)", text, re.S).group(1).split()
    on_disk = {p.relative_to(ROOT).as_posix() for p in (ROOT / "sirt").rglob("*.py") if "__pycache__" not in p.parts}
    assert set(listed) == on_disk and len(listed) == len(set(listed))
    assert "add_subdirectory(sirt)" in (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")


def test_no_package_imports_the_command_line_above_it():
    """The three computation packages never import ``sirt``: it stands above them."""
    for module in MODULES:
        for path in (ROOT / module / f"{module}Lib").rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                    [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
                assert not any(n == "sirt" or n.startswith("sirt.") for n in names), f"{path} imports sirt"


def _cmake_extension_values() -> dict[str, str]:
    text = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    return {k.lower(): v for k, v in re.findall(r'^set\(EXTENSION_([A-Z]+) "([^"]*)"\)', text, re.M)}


def test_screenshots_and_icon_of_the_extension_are_in_the_repository():
    """EXTENSION_ICONURL and EXTENSION_SCREENSHOTURLS point at files of this repository's main branch."""
    values = _cmake_extension_values()
    prefix = "https://raw.githubusercontent.com/SlicerSIRT/SlicerSIRT/main/"
    urls = [values["iconurl"], *values["screenshoturls"].split()]
    assert len(urls) >= 3
    for url in urls:
        assert url.startswith(prefix) and (ROOT / url[len(prefix):]).is_file(), url


def test_extensions_index_description_matches_the_cmake_metadata():
    entries = {}
    for line in (ROOT / "SlicerSIRT.s4ext").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition(" ")
            entries[key] = value.strip()
    values = _cmake_extension_values()
    assert entries["scm"] == "git" and entries["enabled"] == "1" and entries["build_subdirectory"] == "."
    for key in ("homepage", "contributors", "category", "iconurl", "description", "screenshoturls", "depends"):
        assert entries[key] == values[key], key
