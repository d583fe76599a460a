"""3D project workflow (spipy's ``phase.phase3d``); see :mod:`prnf_core.project`."""
from .project import Workflow

_workflow = Workflow(3)
new_project, config_project, run_project, use_project = _workflow.functions()

__all__ = ["new_project", "config_project", "run_project", "use_project"]
