"""Custom-node pack definitions: the generator reads a pack's source without running it, and the bundled,
trimmed file loads into the definitions targeting and seeds use."""

import json
import subprocess
from pathlib import Path

from script_loader import load_script

from comfyui_bridge.nodeinfo import PACK_DEFS_PATH, NodeDef, NodeInfo, load_pack_defs

ROOT = Path(__file__).resolve().parent.parent

FAKE_PACK = {
    "__init__.py": '''
from .nodes import StyledText, MySampler, Helper
from .consts import get_name
NODE_CLASS_MAPPINGS = {"Styled Text (fake)": StyledText, get_name("Sampler"): MySampler}
NODE_CLASS_MAPPINGS.update({"Helper Node": Helper})
''',
    "consts.py": '''
NAMESPACE = "fake"
def get_name(name):
    return "{} ({})".format(name, NAMESPACE)
''',
    "nodes.py": '''
import folder_paths
ANY = AnyType("*")

class StyledText:
    @classmethod
    def INPUT_TYPES(cls):
        inputs = {"required": {"text_positive": ("STRING", {"multiline": True}),
                               "text_negative": ("STRING", {"multiline": True}),
                               "style": (folder_paths.get_filename_list("styles"),),
                               "log_prompt": ("BOOLEAN", {"default": False})}}
        inputs["optional"] = {"image": ("IMAGE",)}
        return inputs
    RETURN_TYPES = ("STRING", "STRING")
    RETURN_NAMES = ("text_positive", "text_negative")

class Base:
    RETURN_TYPES = ("LATENT",)

class MySampler(Base):
    @classmethod
    def INPUT_TYPES(s):
        return {"required": {"model": ("MODEL",), "text_embeds": ("FAKETEXTEMBEDS",),
                             "seed": ("INT", {"default": 0, "min": 0, "max": 0xffffffffffffffff}),
                             "steps": ("INT", {"default": 20}), "passthrough": (ANY,)}}

class Helper:
    @classmethod
    def INPUT_TYPES(s):
        return {"required": {"width": ("INT", {})}}
    RETURN_TYPES = ("INT",)

class V3Encoder(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(node_id="FakeV3Encoder",
                         inputs=[io.Clip.Input("clip"), io.String.Input("prompt", multiline=True)],
                         outputs=[io.Conditioning.Output(display_name="conditioning")])
''',
}


def _builder():
    return load_script("build_pack_defs")


def _git_pack(tmp_path: Path) -> Path:
    repo = tmp_path / "someone+fake-pack" / "repo"
    repo.mkdir(parents=True)
    for name, text in FAKE_PACK.items():
        (repo / name).write_text(text, encoding="utf-8")
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    for cmd in (["git", "init", "-q"], ["git", "add", "."], ["git", "commit", "-q", "-m", "x"]):
        subprocess.run(cmd, cwd=repo, check=True, env=env)  # noqa: S603 - fixed git commands on a temp repo
    return repo / ".git"


def test_generator_reads_registrations_inputs_and_outputs_from_source(tmp_path):
    data = _builder().build([_git_pack(tmp_path)])
    classes = data["classes"]
    assert data["sources"][0]["repo"] == "someone/fake-pack"
    # Registered under the mapping key, including one built by a helper (rgthree's get_name pattern).
    assert classes["Styled Text (fake)"] == {
        "i": {"text_positive": "Sm", "text_negative": "Sm", "style": "C", "log_prompt": "B"},
        "o": ["STRING", "STRING"], "n": ["text_positive", "text_negative"]}
    # RETURN_TYPES inherited from a base class; the seed keeps its bounds; MODEL and plain INTs are dropped.
    assert classes["Sampler (fake)"] == {
        "i": {"text_embeds": "FAKETEXTEMBEDS", "seed": "s:0:18446744073709551615", "passthrough": "*"},
        "o": ["LATENT"]}
    assert classes["FakeV3Encoder"] == {"i": {"prompt": "Sm"}, "o": ["CONDITIONING"], "n": ["conditioning"]}
    # Nothing targeting can use: left out.
    assert "Helper Node" not in classes


def test_generated_definitions_load_as_node_definitions(tmp_path):
    builder = _builder()
    out = tmp_path / "pack_defs.json"
    out.write_text(builder.render(builder.build([_git_pack(tmp_path)])), encoding="utf-8")
    classes = load_pack_defs(out)
    d = NodeDef.parse("Sampler (fake)", classes["Sampler (fake)"], source="packs")
    assert d.input("seed").seed_like and d.input("seed").max == 2 ** 64 - 1
    assert d.input("text_embeds").type == "FAKETEXTEMBEDS" and d.outputs == ["LATENT"]
    styled = NodeDef.parse("Styled Text (fake)", classes["Styled Text (fake)"], source="packs")
    assert styled.input("text_positive").multiline and styled.input("style").is_combo
    assert styled.output_names == ["text_positive", "text_negative"]


def test_bundled_pack_file_is_small_and_complements_node_defs():
    assert PACK_DEFS_PATH.stat().st_size < 220 * 1024
    data = json.loads(PACK_DEFS_PATH.read_text(encoding="utf-8"))
    assert len(data["sources"]) >= 30 and all(s["commit"] for s in data["sources"])
    bundled = set(NodeInfo().known())
    assert not bundled & set(data["classes"])        # never shadows a ComfyUI/BizyAir definition
    packs = load_pack_defs()
    for cls in ("WanVideoSampler", "WanVideoTextEncode", "SDXLPromptStyler", "Efficient Loader",
                "KSampler (Efficient)", "FaceDetailer", "Seed (rgthree)", "CR Prompt Text", "Text Concatenate"):
        assert cls in packs, cls


def test_pack_definitions_do_not_change_what_the_general_nodeinfo_sees():
    # Validation and UI conversion need complete definitions: the partial pack ones stay out of NodeInfo.
    assert NodeInfo().get("WanVideoSampler") is None
