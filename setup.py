"""The package's one build step beyond pyproject.toml: the translation catalogs.

locales/ sits beside the packages (where `make i18n-extract` and translators work), so a
wheel would leave it out and give English prompts. build_py copies each locales/<lang>/
LC_MESSAGES/coso.po into bot/locales/ and compiles its .mo there (bot/i18n.py reads the .po
itself when no .mo is found).
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildWithCatalogs(build_py):
    def run(self) -> None:
        super().run()
        for po in sorted((HERE / "locales").glob("*/LC_MESSAGES/coso.po")):
            target = Path(self.build_lib) / "bot" / "locales" / po.relative_to(HERE / "locales")
            target.parent.mkdir(parents=True, exist_ok=True)
            self.copy_file(str(po), str(target))
            compile_mo(po, target.with_suffix(".mo"))


def compile_mo(po: Path, mo: Path) -> None:
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with open(po, "rb") as source:
        catalog = read_po(source)
    with open(mo, "wb") as out:
        write_mo(out, catalog)


setup(cmdclass={"build_py": BuildWithCatalogs})
