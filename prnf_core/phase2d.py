"""2D project workflow (spipy's ``phase.phase2d``); see :mod:`prnf_core.project`."""
from .project import Workflow

_workflow = Workflow(2)
new_project, config_project, run_project, use_project = _workflow.functions()

__all__ = ["new_project", "config_project", "run_project", "use_project"]
