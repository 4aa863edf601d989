"""``biostation records show FILE...``: what an ANSI/NIST-ITL transaction holds, images checked."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="ANSI/NIST-ITL transactions: read, list and check them.", no_args_is_help=True)
    app.add_typer(group, name="records")

    @group.command("show")
    def show(
        files: list[Path] = typer.Argument(..., help="Transactions (.an2, .eft, .nst), traditional encoding."),
        fields: bool = typer.Option(False, "--fields", help="Also print every text field (demographics are "
                                    "personal data: shown on this terminal only)."),
        decode: bool = typer.Option(True, "--decode/--no-decode", help="Decode every image and check its size "
                                    "against its record."),
    ) -> None:
        """List the records of each transaction; exit status 1 if one does not read or an image is bad."""
        from rich.console import Console
        from rich.table import Table

        from ..errors import RecordError
        from ..records import read_transaction

        out = Console()
        failed = 0
        for path in files:
            try:
                tx = read_transaction(path.read_bytes())
            except (OSError, RecordError) as exc:
                failed += 1
                out.print(f"[red]{path}[/]: {exc}", highlight=False)
                continue
            table = Table(title=f"{path.name}: version {tx.version}, {len(tx)} records", title_justify="left")
            for col in ("#", "type", "IDC", "fields", "image", "check"):
                table.add_column(col)
            for k, r in enumerate(tx):
                info = r.image_info()
                image, check = "", ""
                if info is not None:
                    image = f"{info.compression} {info.width} x {info.height}" + (
                        f" @ {info.ppi:.0f} ppi" if info.ppi else "")
                    if decode:
                        try:
                            arr = r.image()
                            check = "[green]ok[/] " + " x ".join(str(n) for n in arr.shape)
                        except RecordError as exc:
                            failed += 1
                            check = f"[red]{exc}[/]"
                nfields = len(r.header or {}) if r.binary else len(r.fields) + (r.data is not None)
                table.add_row(str(k), str(r.type), str(r.idc), str(nfields), image, check)
            out.print(table)
            if fields:
                for r in tx:
                    for number in r.fields:
                        out.print(f"{r.type}.{number:03d}: {r.text(number)!r}", highlight=False)
                    if r.header:
                        out.print(f"Type-{r.type} header: {r.header}", highlight=False)
        if failed:
            raise typer.Exit(1)
