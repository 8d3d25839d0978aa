from comfyui_bridge.scrub import one_line, scrub

WRONG_KEY_ERROR = ("\x1b[91mError validating API key: sk-testkey000, error: API 密钥无效或已过期，"
                   "请前往 https://cloud.siliconflow.cn 获取密钥\x1b[0m\n")


def test_ansi_codes_are_stripped_and_sk_keys_redacted():
    text = scrub(WRONG_KEY_ERROR)
    assert "\x1b" not in text
    assert "sk-testkey000" not in text
    assert "sk-[redacted]" in text


def test_urls_survive_while_server_paths_are_hidden():
    text = scrub('File "/opt/ComfyUI/execution.py", line 518, in execute; see https://cloud.siliconflow.cn/account/ak')
    assert "/opt/ComfyUI" not in text
    assert "execution.py" in text
    assert "https://cloud.siliconflow.cn/account/ak" in text


def test_given_secrets_and_bearer_tokens_are_redacted():
    text = scrub("proxy said: Authorization: Bearer abcdef123456 for my-secret-value", ["my-secret-value"])
    assert "abcdef123456" not in text and "my-secret-value" not in text


def test_cos_signatures_in_urls_are_redacted():
    url = "https://b-1.cos.ap-guangzhou.myqcloud.com/k?q-sign-algorithm=sha1&q-ak=AKIDxyz&q-signature=deadbeef"
    text = scrub(url)
    assert "AKIDxyz" not in text and "deadbeef" not in text


def test_one_line_collapses_whitespace_and_bounds_length():
    text = one_line("a\n\n b\t c" + "x" * 500, limit=20)
    assert "\n" not in text and len(text) == 20 and text.endswith("…")
