"""2D project workflow (the reference ``phase.phase2d``); see :mod:`prnf_core.project`."""
from .project import Workflow

_workflow = Workflow(2)
new_project = _workflow.new_project
config_project = _workflow.config_project
run_project = _workflow.run_project
use_project = _workflow.use_project

__all__ = ["new_project", "config_project", "run_project", "use_project"]
