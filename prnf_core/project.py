"""The project workflow of spipy's ``phase2d``/``phase3d`` modules, on the network runner.

A project is a folder with ``config.ini`` (spipy's keys), the compiled network
``model.json``, and after a run ``result.h5``, ``result.png`` (and ``run.log`` or
``job.slurm``). The schedule ``'100RAAR 200DM 200ERA'`` becomes a chain of algorithm nodes
from the plugin registry, so plugins work in schedules too.
"""
from __future__ import annotations

import configparser
import os
import re
import shlex
import subprocess
import sys

import numpy as np

from .errors import ConfigError, PluginError
from .fileutil import atomic_write, cache_dir, save_npy
from .parallel import mpiexec_path

#: (section, key) -> (default 2D, default 3D, meaning).
KEYS = {
    ("input", "shape"): ("123,123", "120,120,120", "pattern shape (needed for .bin data; checked otherwise)"),
    ("input", "padd_to_pow2"): ("True", "True", "zero-pad each axis to a power of 2; padded pixels float"),
    ("input", "inner_mask"): ("5", "3", "pixels with radius < inner_mask float (beam stop)"),
    ("input", "outer_mask"): ("auto", "auto", "intensity of pixels with radius >= outer_mask set "
                              "to 0; auto: the edge of the data (half the smallest axis), so only "
                              "corners go (spipy's default 64 zeroed most of a 256^2 pattern's high q)"),
    ("input", "outer_outer_mask"): ("None", "None", "with mask_edges: radii in [outer_mask, outer_outer_mask] float instead"),
    ("input", "mask_edges"): ("True", "False", "let the ring outer_mask..outer_outer_mask float"),
    ("input", "subtract_percentile"): ("None", "None", "subtract this percentile (0-100] of the data"),
    ("input", "spherical_support"): ("None", "None", "radius of a fixed spherical support (None: none)"),
    ("input", "init_model"): ("None", "None", "real-space start model file (padded shape)"),
    ("input", "photon_threshold"): ("None", "None", "intensities below it set to 0 (measured "
                                    "zeros), as cohere's amp_threshold"),
    ("input", "bin"): ("None", "None", "sum intensities over blocks: 2, or one per axis like "
                       "1,2,2; a block with a bad pixel floats"),
    ("input", "fft_size"): ("None", "None", "crop or pad each axis to an FFT-friendly length "
                            "about the centre (crop, pad; after padd_to_pow2)"),
    ("phasing", "repeats"): ("40", "40", "independent phasings per process"),
    ("phasing", "seed"): ("None", "None", "random seed of the run (None: a fresh one, reported); "
                          "set it to reproduce a run"),
    ("phasing", "iters"): ("100RAAR 200DM 200ERA", "100RAAR 200DM 200ERA", "schedule: <iterations><ALGORITHM> ..."),
    ("phasing_parameters", "support_size"): ("200", None, "pixels in the shrinkwrapped support (2D)"),
    ("phasing_parameters", "voxel_number"): (None, "2000", "voxels in the shrinkwrapped support (3D)"),
    ("phasing_parameters", "beta"): ("0.8", "0.8", "RAAR beta (and any algorithm's 'beta')"),
    ("phasing_parameters", "gamma"): ("0.9", "0.9", "HIO/HPR feedback gamma (and any algorithm's 'gamma')"),
    ("phasing_parameters", "background"): ("True", "True", "fit a radial background"),
}
SCHEDULE_TOKEN = re.compile(r"^(\d+)([A-Za-z_][A-Za-z0-9_]*)$")


def parse_schedule(text):
    """``'100RAAR 200DM 200ERA'`` -> [(100, 'RAAR'), (200, 'DM'), (200, 'ERA')]."""
    steps = []
    for token in str(text).split():
        match = SCHEDULE_TOKEN.match(token)
        if not match:
            raise ConfigError(f"schedule token {token!r} in {text!r}: write <iterations><ALGORITHM>, "
                              "e.g. '100RAAR 200DM 200ERA'")
        steps.append((int(match.group(1)), match.group(2)))
    if not steps:
        raise ConfigError("phasing|iters is empty: give a schedule like '100RAAR 200DM 200ERA'")
    return steps


def _bin_factors(value):
    """``input|bin`` as pInput's ``bin``: an integer, or ``1,2,2`` as one per axis."""
    if not isinstance(value, str):
        return value
    try:
        return [int(v) for v in value.split(",")]
    except ValueError:
        raise ConfigError(f"input|bin={value!r}: give an integer like 2, or one per axis like "
                          "1,2,2") from None


def _value(text):
    """config.ini text -> Python value (None, bool, int, float, or the text itself)."""
    text = text.strip()
    if text in ("None", ""):
        return None
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


class Project:
    """One project folder; ``dims`` is 2 or 3 (the keys' defaults differ)."""

    def __init__(self, folder, dims):
        self.folder, self.dims = os.path.abspath(folder), dims
        self.config_file = os.path.join(self.folder, "config.ini")

    # ------------------------------------------------------------ config
    def _default(self, key):
        """The default text of a (section, key) for this dimension (None: not a key here)."""
        d2, d3, _ = KEYS[key]
        return d2 if self.dims == 2 else d3

    def defaults(self):
        parser = configparser.ConfigParser()
        parser.optionxform = str
        for section, key in KEYS:
            value = self._default((section, key))
            if value is not None:
                parser.setdefault(section, {})
                parser[section][key] = value
        return parser

    def read(self):
        return _parse(self.read_text())

    def read_text(self):
        if not os.path.isfile(self.config_file):
            raise ConfigError(f"no project at '{self.folder}' (no config.ini); create one with "
                              "new_project(...) or pick one with use_project(path)")
        with open(self.config_file) as f:
            return f.read()

    def write(self, parser):
        from io import StringIO
        text = StringIO()
        parser.write(text)
        atomic_write(self.config_file, text.getvalue().encode())

    def configure(self, params):
        """Set ``{'section|key': value}`` entries; unknown keys are refused with the valid ones.

        The new configuration must compile into a network before anything is written (a bad
        value once broke every later command), and the file is edited line by line, so the
        user's comments stay."""
        text = self.read_text()
        allowed = {f"{s}|{k}" for s, k in KEYS if self._default((s, k)) is not None}
        allowed |= declared_keys()
        for name, value in params.items():
            if name not in allowed:
                raise ConfigError(f"unknown project key {name!r}; valid keys: {sorted(allowed)}")
            section, key = name.split("|")
            text = _set_ini_value(text, section, key, str(value))
        parser = _parse(text)
        self.network(parser)
        _seed(self.settings(parser))
        atomic_write(self.config_file, text.encode())

    def settings(self, parser=None):
        parser = parser or self.read()
        return {f"{s}|{k}": _value(v) for s in parser.sections() for k, v in parser[s].items()}

    # ------------------------------------------------------------ network
    def input_config(self, parser=None):
        """The pInput config of this project (after padding, written into the folder)."""
        parser = parser or self.read()
        s = self.settings(parser)
        pattern, mask = self._load_data(s, parser)
        pattern, mask = _pad(pattern, mask, s["input|padd_to_pow2"])
        os.makedirs(os.path.join(self.folder, "input"), exist_ok=True)
        pattern_path = os.path.join(self.folder, "input", "pattern.npy")
        mask_path = os.path.join(self.folder, "input", "mask.npy")
        save_npy(pattern_path, pattern)         # atomic: a full disk keeps the old file
        save_npy(mask_path, mask.astype(np.uint8))
        outer, outer_outer = s["input|outer_mask"], s["input|outer_outer_mask"]
        if outer == "auto":
            outer = min(pattern.shape) // 2
        elif outer is not None and not isinstance(outer, (int, float)):
            raise ConfigError(f"input|outer_mask={outer!r}: give a radius in pixels, auto or None")
        float_ring = s["input|mask_edges"] and outer is not None and outer_outer is not None
        big = max(float(np.hypot.reduce(pattern.shape)), float(outer or 0))
        return {
            "pattern_path": pattern_path, "mask_path": mask_path,
            "center": [n // 2 for n in pattern.shape],
            "center_mask": s["input|inner_mask"],
            "edge_remove": None if outer is None else [outer, big],
            "edge_mask": [outer, outer_outer] if float_ring else None,
            "subtract_percentile": s["input|subtract_percentile"] or False,
            "fixed_support_r": s["input|spherical_support"],
            "background": bool(s["phasing_parameters|background"]),
            "initial_model": s["input|init_model"],
            # the preparation steps (absent from projects made before them: off)
            "photon_threshold": s.get("input|photon_threshold"),
            "bin": _bin_factors(s.get("input|bin")),
            "fft_size": s.get("input|fft_size"),
        }

    def _load_data(self, s, parser):
        from .io import load_array
        try:
            shape = tuple(int(v) for v in str(s["input|shape"]).split(","))
        except ValueError:
            raise ConfigError(f"input|shape={s['input|shape']!r}: give sizes like 123,123 "
                              "(or 120,120,120 in 3D)") from None
        pattern = load_array(parser["project"]["data_path"], shape=shape)
        if pattern.shape != shape:
            raise ConfigError(f"the data has shape {pattern.shape} but input|shape is "
                              f"{','.join(map(str, shape))}; set input|shape to match")
        mask_path = parser["project"].get("mask_path", "None")
        mask = (np.zeros(shape, bool) if mask_path == "None"
                else load_array(mask_path, shape=shape).astype(bool))
        return pattern, mask

    def network(self, parser=None):
        """Compile the schedule into pInput -> algorithms -> pOutput; returns (inputs, output)."""
        from .nodes import pInput, pOutput
        from .plugins import get_registry
        parser = parser or self.read()
        s = self.settings(parser)
        size = s["phasing_parameters|support_size" if self.dims == 2 else "phasing_parameters|voxel_number"]
        registry = get_registry()
        node = first = pInput(self.input_config(parser), name="project input")
        for iterations, name in parse_schedule(s["phasing|iters"]):
            try:
                cls = registry.get(name).cls
            except PluginError as exc:
                raise ConfigError(f"phasing|iters: {exc}") from None
            node = cls(iterations, size, **_extra_parameters(cls, s)).after(node)
        return [first], pOutput().after(node)

    # ------------------------------------------------------------ running
    def command(self, num_proc):
        """The shell command that runs this project (under mpiexec for num_proc > 1)."""
        settings = self.settings()
        cmd = [sys.executable, "-m", "prnf_core.cli", "run", self.path("model.json"),
               "--repeat", str(settings["phasing|repeats"]), "--out", self.path("result.h5"),
               "--plot", self.path("result.png"), "--checkpoint", self.path("checkpoint.h5")]
        seed = _seed(settings)
        if seed is not None:
            cmd += ["--seed", str(seed)]
        if num_proc > 1:
            cmd = [mpiexec_path() or "mpiexec", "-n", str(num_proc)] + cmd
        return cmd

    def path(self, name):
        return os.path.join(self.folder, name)

    def prepare_run(self):
        """Write model.json; a checkpoint of another network is stale and removed (the
        runner would refuse it), one of the same network lets the run resume."""
        from .phexec import Runner
        inputs, output = self.network()
        model = self.path("model.json")
        old = _read_bytes(model)
        Runner(inputs, output).dump_model(model)
        if old is not None and _structure(old) != _structure(_read_bytes(model)):
            for name in os.listdir(self.folder):
                if name.startswith("checkpoint.") and name.endswith(".h5"):
                    os.remove(self.path(name))

    def run(self, num_proc=1, nohup=False, cluster=False):
        if not isinstance(num_proc, int) or num_proc < 1:
            raise ConfigError(f"num_proc={num_proc!r}: give an integer >= 1")
        self.prepare_run()
        cmd = self.command(num_proc)
        if cluster:
            return self.write_job_script(cmd, num_proc)
        if nohup:
            with open(self.path("run.log"), "ab") as log:   # the child keeps its own copy
                return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.folder,
                                        start_new_session=True, stdin=subprocess.DEVNULL)
        result = subprocess.run(cmd, cwd=self.folder)
        if result.returncode != 0:
            raise ConfigError(f"the project run failed (exit {result.returncode}); see the messages above")
        return self.path("result.h5")

    def write_job_script(self, cmd, num_proc):
        """A Slurm batch script beside the project; nothing is submitted."""
        run = shlex.join(cmd[3:] if num_proc > 1 else cmd)
        if any(c in part for part in cmd for c in "\n\r"):
            # a #SBATCH line ends at a newline: the rest would run as a shell line
            raise ConfigError(f"the project path {self.folder!r} holds a line break, which a job "
                              "script cannot quote; move the project to a folder without one")
        launcher = f"srun --mpi=pmi2 -n {num_proc} " if num_proc > 1 else ""
        quote = shlex.quote
        script = "\n".join([
            "#!/bin/bash",
            f"#SBATCH --job-name={quote('prnf-' + os.path.basename(self.folder))}",
            f"#SBATCH --ntasks={num_proc}",
            "#SBATCH --cpus-per-task=1",
            f"#SBATCH --output={quote(self.path('run.log'))}",
            f"#SBATCH --chdir={quote(self.folder)}",
            "# submit with: sbatch job.slurm",
            f"{launcher}{run}",
            ""])
        atomic_write(self.path("job.slurm"), script.encode())
        return self.path("job.slurm")


def _seed(settings):
    seed = settings.get("phasing|seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ConfigError(f"phasing|seed={seed!r}: give an integer >= 0, or None")
    return seed


def _parse(text):
    parser = configparser.ConfigParser()
    parser.optionxform = str
    parser.read_string(text)
    return parser


def _set_ini_value(text, section, key, value):
    """``text`` (an ini file) with ``key = value`` set in ``[section]``; every other line,
    comments included, as it was."""
    lines = text.splitlines(keepends=True)
    header = re.compile(r"^\s*\[(.+)\]\s*$")
    entry = re.compile(rf"^\s*{re.escape(key)}\s*[=:]")
    start = next((i for i, ln in enumerate(lines) if (m := header.match(ln)) and m.group(1) == section),
                 None)
    if start is None:
        return text + ("" if text.endswith("\n") or not text else "\n") + f"\n[{section}]\n{key} = {value}\n"
    end = next((i for i in range(start + 1, len(lines)) if header.match(lines[i])), len(lines))
    for i in range(start + 1, end):
        if entry.match(lines[i]):
            lines[i] = f"{key} = {value}\n"
            return "".join(lines)
    last = max((i for i in range(start, end) if lines[i].strip()), default=start)
    lines.insert(last + 1, f"{key} = {value}\n")
    return "".join(lines)


def _read_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _structure(model_json):
    """A model file's network (checkpoint fingerprint), without its data and metadata."""
    import json
    from .checkpoint import fingerprint
    return fingerprint(json.loads(model_json), None)


def declared_keys():
    """``phasing_parameters|NAME`` for every parameter an installed algorithm declares (a
    plugin's included; arrays excepted, which an ini value cannot hold)."""
    from .plugins import get_registry
    registry = get_registry()
    return {f"phasing_parameters|{p.name}" for name in registry.names()
            for p in getattr(registry.get(name).cls, "parameters", ()) if p.kind != "array"}


def _extra_parameters(cls, settings):
    """Required parameters of an algorithm beyond (iteration, support_size), by name from
    phasing_parameters; optional ones too when the project sets them."""
    params = {}
    for p in getattr(cls, "parameters", ()):
        key = f"phasing_parameters|{p.name}"
        if key in settings and settings[key] is not None:
            params[p.name] = settings[key]
        elif p.required:
            raise ConfigError(f"{cls.algorithm} needs '{p.name}' ({p.accepted()}): set "
                              f"phasing_parameters|{p.name}")
    return params


def _pad(pattern, mask, to_pow2):
    """Centre-preserving zero padding to powers of 2; padded pixels are masked (they float)."""
    if not to_pow2:
        return pattern, mask
    target = [1 << int(np.ceil(np.log2(n))) for n in pattern.shape]
    before = [t // 2 - n // 2 for t, n in zip(target, pattern.shape)]
    widths = [(b, t - n - b) for b, t, n in zip(before, target, pattern.shape)]
    return np.pad(pattern, widths), np.pad(mask, widths, constant_values=True)


class Workflow:
    """The module-level API of ``phase2d``/``phase3d``: one current project at a time."""

    def __init__(self, dims):
        self.dims, self.current = dims, None

    def functions(self):
        """The four module-level functions of spipy's API, bound to this workflow."""
        return self.new_project, self.config_project, self.run_project, self.use_project

    def new_project(self, data_path, mask_path=None, path=None, name=None):
        """Create a project folder ``path/name`` with a default config.ini; it becomes current."""
        for label, value in (("data_path", data_path), ("mask_path", mask_path)):
            if value is not None and not os.path.isfile(value):
                raise ConfigError(f"{label} '{value}' does not exist")
        folder = os.path.join(os.path.abspath(path or os.getcwd()),
                              name or f"phase{self.dims}d_project_{_next_free(path or os.getcwd(), self.dims)}")
        if os.path.exists(os.path.join(folder, "config.ini")):
            raise ConfigError(f"a project already exists at '{folder}'; use_project() it or pick another name")
        _check_data_outside(folder, data_path, mask_path)
        os.makedirs(folder, exist_ok=True)
        project = Project(folder, self.dims)
        parser = project.defaults()
        parser["project"] = {"dims": str(self.dims), "data_path": os.path.abspath(data_path),
                             "mask_path": os.path.abspath(mask_path) if mask_path else "None"}
        try:
            from .io import load_array
            parser["input"]["shape"] = ",".join(map(str, load_array(data_path).shape))
        except Exception:   # .bin data: the shape comes with config_project
            pass
        project.write(parser)
        self.current = project
        _remember(folder)
        return folder

    def config_project(self, params):
        self._project().configure(params)

    def run_project(self, num_proc=1, nohup=False, cluster=False):
        return self._project().run(num_proc, nohup, cluster)

    def use_project(self, project_path):
        project = Project(project_path, self.dims)
        dims = project_dims(project_path)
        if dims != self.dims:
            raise ConfigError(f"'{project_path}' is a {dims}D project; use phase{dims}d")
        self.current = project
        _remember(project.folder)
        return project.folder

    def _project(self):
        if self.current is None:
            folder = current_folder()
            if folder is None:
                raise ConfigError("no current project: call new_project(...) or use_project(path)")
            self.use_project(folder)
        return self.current


#: Files a project writes in its folder (the data must be none of them).
PROJECT_FILES = ("config.ini", "model.json", "result.h5", "result.png", "checkpoint.h5",
                 "run.log", "job.slurm", os.path.join("input", "pattern.npy"),
                 os.path.join("input", "mask.npy"))


def _check_data_outside(folder, data_path, mask_path):
    """The data must not be a file the project writes: configuring would replace it."""
    from .fileutil import same_file
    for what, path in (("data", data_path), ("mask", mask_path)):
        for name in PROJECT_FILES:
            if path is not None and same_file(path, os.path.join(folder, name)):
                raise ConfigError(f"{what} '{path}' is the project's own file '{name}', which "
                                  "the project rewrites; copy the data out of the project "
                                  "folder or create the project elsewhere")


def _next_free(path, dims):
    k = 1
    while os.path.exists(os.path.join(path, f"phase{dims}d_project_{k}")):
        k += 1
    return k


def _state_file():
    return os.path.join(cache_dir(), "current_project")


def _remember(folder):
    try:
        atomic_write(_state_file(), folder.encode())
    except OSError:
        pass


def project_dims(folder):
    """2 or 3: the dimension a project folder was created for."""
    return Project(folder, 2).read().getint("project", "dims")


def current_folder():
    """The project folder last created or used (from the shell or Python), or None."""
    try:
        with open(_state_file()) as f:
            folder = f.read().strip()
        return folder if os.path.isfile(os.path.join(folder, "config.ini")) else None
    except OSError:
        return None
