#!/usr/bin/env python3
"""Tests of scripts/modgraph on small crates written to a temporary folder:
`python3 scripts/modgraph_test.py`."""

import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

MODGRAPH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "modgraph")


def crate(files):
    """A temporary `src` folder holding `files` (relative path -> Rust source)."""
    root = tempfile.TemporaryDirectory()
    src = os.path.join(root.name, "src")
    for path, text in files.items():
        full = os.path.join(src, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(text))
    return root, src


def run(src, *args):
    done = subprocess.run([sys.executable, MODGRAPH, src, *args],
                          capture_output=True, text=True, check=False)
    return done.returncode, done.stdout, done.stderr


def edges(stdout):
    """The edge lines of the output (not the cycles and their places)."""
    return {line for line in stdout.splitlines()
            if " -> " in line and not line.startswith((" ", "cycle"))}


class Modgraph(unittest.TestCase):
    def check(self, files, *args):
        root, src = crate(files)
        self.addCleanup(root.cleanup)
        return run(src, *args)

    def test_a_cycle_is_reported_with_its_places(self):
        code, out, _ = self.check({
            "lib.rs": "pub mod bus;\npub mod db;\nmod metrics;\n",
            "bus.rs": "use crate::db::Writer;\npub struct Delivered;\n",
            "db.rs": "pub struct Writer;\nfn f() { let _ = crate::bus::Delivered; }\n",
            "metrics.rs": "use crate::bus;\n",
        })
        self.assertEqual(code, 1, out)
        self.assertEqual(edges(out), {"bus -> db", "db -> bus", "metrics -> bus"})
        self.assertIn("cycle: bus -> db -> bus", out)
        self.assertIn("bus.rs:1 `use crate::db::Writer`", out)
        self.assertIn("db.rs:2 `crate::bus::Delivered`", out)
        self.assertIn("among the 3 modules of", out)

    def test_no_cycle_exits_zero(self):
        code, out, _ = self.check({
            "lib.rs": "mod a;\nmod b;\n",
            "a.rs": "use crate::b::B;\nuse std::fmt;\nuse serde::Serialize;\n",
            "b.rs": "pub struct B;\n",
        })
        self.assertEqual(code, 0, out)
        self.assertEqual(edges(out), {"a -> b"})
        self.assertIn("no cycles among the 2 modules of", out)

    def test_grouped_imports_and_self(self):
        code, out, _ = self.check({
            "lib.rs": "mod a;\nmod b;\nmod c;\nmod d;\n",
            "a.rs": "use crate::{b::{self, B as Bee}, c::*};\n",
            "b.rs": "pub struct B;\n",
            "c.rs": "use crate::{\n    d::{\n        D,\n    },\n};\n",
            "d.rs": "use super::a;\npub struct D;\n",
        })
        self.assertEqual(edges(out), {"a -> b", "a -> c", "c -> d", "d -> a"})
        self.assertEqual(code, 1)
        self.assertIn("cycle: a -> c -> d -> a", out)

    def test_reexports_lead_to_the_module_that_defines_the_item(self):
        # inspector and overlays import each other only through components/mod.rs.
        files = {
            "lib.rs": "pub mod components;\n",
            "components/mod.rs": """\
                mod inspector;
                mod overlays;
                pub use inspector::Inspector;
                pub use self::overlays::{Menu, Overlays};
                """,
            "components/inspector.rs": "use super::Menu;\npub struct Inspector;\n",
            "components/overlays.rs":
                "use super::Inspector;\npub struct Menu;\npub struct Overlays;\n",
        }
        code, out, _ = self.check(files, "--depth", "2")
        self.assertEqual(code, 1, out)
        self.assertIn("components::inspector -> components::overlays", edges(out))
        self.assertIn("components::overlays -> components::inspector", edges(out))
        self.assertIn(
            "cycle: components::inspector -> components::overlays -> components::inspector", out)
        # At depth 1 all of it is one module.
        code, out, _ = self.check(files)
        self.assertEqual(code, 0, out)

    def test_glob_reexports_are_followed(self):
        code, out, _ = self.check({
            "lib.rs": "mod api;\nmod models;\nmod store;\n",
            "models/mod.rs": "mod run;\npub use run::*;\n",
            "models/run.rs": "pub struct Run;\nuse crate::store::Store;\n",
            "store.rs": "pub struct Store;\n",
            "api.rs": "use crate::models::Run;\n",
        }, "--depth", "2")
        self.assertEqual(code, 0, out)
        self.assertIn("api -> models::run", edges(out))
        self.assertIn("models::run -> store", edges(out))

    def test_parent_and_child_are_not_a_cycle(self):
        code, out, _ = self.check({
            "lib.rs": "mod engine;\n",
            "engine/mod.rs": "mod step;\npub struct Engine;\nfn go() { step::run(); }\n",
            "engine/step.rs":
                "use super::Engine;\nuse crate::engine::Engine as E;\npub fn run() {}\n",
        }, "--depth", "2")
        self.assertEqual(code, 0, out)
        self.assertEqual(edges(out), set())
        self.assertIn("no cycles among the 2 modules of", out)

    def test_comments_and_strings_do_not_count(self):
        code, out, _ = self.check({
            "lib.rs": "mod a;\nmod b;\n",
            "a.rs": "use crate::b::B;\n",
            "b.rs": textwrap.dedent("""\
                // use crate::a::A;
                /* crate::a::f() /* nested */ crate::a::g() */
                /// See [`crate::a::A`].
                pub struct B;
                const S: &str = "crate::a::A";
                const R: &str = r#"use crate::a::A; "quoted""#;
                const C: char = '"';
                fn f<'a>(x: &'a str) -> &'a str { x }
                """),
        })
        self.assertEqual(code, 0, out)
        self.assertEqual(edges(out), {"a -> b"})

    def test_inline_modules_and_file_layouts(self):
        files = {
            "main.rs": "mod net;\nmod app { pub mod view; pub fn start() { crate::net::x(); } }\n",
            "app/view.rs": "use crate::net::sock::Socket;\n",
            "net.rs":
                "pub mod sock;\npub fn x() {}\n#[cfg(test)]\nmod tests { use crate::app::start; }\n",
            "net/sock.rs": "pub struct Socket;\n",
        }
        code, out, _ = self.check(files, "--depth", "2")
        self.assertEqual(edges(out), {"app -> net", "app::view -> net::sock", "net::tests -> app"})
        self.assertEqual(code, 0, out)
        code, out, _ = self.check(files)
        self.assertEqual(code, 1, out)
        self.assertIn("cycle: app -> net -> app", out)
        self.assertIn("net.rs:4 `use crate::app::start`", out)
        # Without the test module, the loop is gone.
        code, out, _ = self.check(files, "--no-tests")
        self.assertEqual(code, 0, out)
        self.assertEqual(edges(out), {"app -> net"})

    def test_a_missing_module_file_is_a_warning(self):
        code, out, err = self.check({"lib.rs": "mod gone;\n"})
        self.assertEqual(code, 0, out)
        self.assertIn("`mod gone;` has no gone.rs or gone/mod.rs", err)

    def test_usage_errors(self):
        code, _, err = run("/nonexistent/src")
        self.assertEqual(code, 2)
        self.assertIn("is not a folder", err)
        root, src = crate({"lib.rs": ""})
        self.addCleanup(root.cleanup)
        code, _, err = run(src, "--depth", "0")
        self.assertEqual(code, 2)
        self.assertIn("--depth must be 1 or more", err)


if __name__ == "__main__":
    unittest.main()
