"""`Problems`: what one validation found, errors and warnings apart, as the loading phases add them."""

from typing import Iterable, List, Set, Tuple

from data_foundation.errors import Problem

__all__ = ["Problems"]


class Problems:
    """Every problem of one pass, in the order found: `errors` (validation fails) and `warnings` (it does not), told
    apart by `Problem.severity`.

    Two rules keep one mistake from being reported many times: `add_once` drops a problem reported before (a module
    that fails to import, named by several entries), and the names `mark_broken` records (a resource with an error
    of its own) are not reported again as missing by whatever refers to them.

    Example:
        >>> problems = Problems()
        >>> problems.add(Problem(Path("shop/sources.yaml"), 3, "resources.shop.users", "`x` is not valid"))
        >>> problems.mark_broken("shop.users")
        >>> len(problems.errors), problems.is_broken("shop.users")
        (1, True)
    """

    def __init__(self) -> None:
        self.errors: List[Problem] = []
        self.warnings: List[Problem] = []
        self._broken: Set[str] = set()
        self._reported: Set[Tuple[object, ...]] = set()

    def add(self, problem: Problem) -> None:
        (self.warnings if problem.severity == "warning" else self.errors).append(problem)

    def extend(self, problems: Iterable[Problem]) -> None:
        for problem in problems:
            self.add(problem)

    def add_once(self, problem: Problem) -> None:
        """Add `problem` unless one at the same place with the same message was added this way before."""
        key = (problem.file, problem.line, problem.message)
        if key not in self._reported:
            self._reported.add(key)
            self.add(problem)

    def mark_broken(self, name: str) -> None:
        self._broken.add(name)

    def is_broken(self, name: str) -> bool:
        return name in self._broken

    def merge(self, other: "Problems") -> None:
        """Take over what `other` found (one folder's problems, in the root's order of folders)."""
        self.errors.extend(other.errors)
        self.warnings.extend(other.warnings)
        self._broken.update(other._broken)
        self._reported.update(other._reported)
