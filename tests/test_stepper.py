"""The HTML stepper in a real browser: Chromium driven by Selenium, as a learner would use it.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them), the
``selenium`` package (in the ``test`` extra) and Graphviz for the picture; skips cleanly
without them. The sigmoid neuron of the backprop notes is stepped with the keys and the
buttons, and the numbers of every step are read back from the page, in order.
"""
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
DOCS = Path(__file__).resolve().parents[1] / "docs"

pytestmark = [
    pytest.mark.skipif(not (os.access(CHROMIUM, os.X_OK) and os.access(DRIVER, os.X_OK)),
                       reason="Chromium is not installed (apt-get install chromium "
                              "chromium-driver)"),
    pytest.mark.skipif(shutil.which("dot") is None,
                       reason="Graphviz's `dot` program is not installed"),
]


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,640"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def neuron():
    """f = 1 / (1 + exp(-(w0*x0 + w1*x1 + w2))) at the notes' values, from primitive gates."""
    v = {n: cr.Variable(val, name=n, dtype=np.float64)
         for n, val in (("w0", 2.0), ("x0", -1.0), ("w1", -3.0), ("x1", -2.0), ("w2", -3.0))}
    f = 1.0 / (1.0 + cr.exp(-(v["w0"] * v["x0"] + v["w1"] * v["x1"] + v["w2"])))
    f.name = "f"
    return f, v


def by(css):
    from selenium.webdriver.common.by import By

    return By.CSS_SELECTOR, css


def text(driver, css) -> str:
    return driver.find_element(*by(css)).get_attribute("data-text")


def read_step(driver) -> tuple:
    """What the panel shows: (phase, formula, numbers) with the numbers as
    ``role[:input]=text`` in page order."""
    panel = driver.find_element(*by("#panel"))
    phase = panel.get_attribute("data-phase")
    formula = panel.find_element(*by(".formula")).text
    numbers = []
    for e in panel.find_elements(*by(".num")):
        role, who = e.get_attribute("data-role"), e.get_attribute("data-input")
        numbers.append(f"{role}{':' + who if who else ''}={e.get_attribute('data-text')}")
    return phase, formula, numbers


# what the notes write, step by step: the forward values, then upstream x local = downstream
FORWARD = [("t1 = w0 * x0", "-2.00"), ("t2 = w1 * x1", "6.00"), ("t3 = t1 + t2", "4.00"),
           ("t4 = t3 + w2", "1.00"), ("t5 = -t4", "-1.00"), ("t6 = exp(t5)", "0.37"),
           ("t7 = 1.00 + t6", "1.37"), ("f = 1.00 / t7", "0.73")]
BACKWARD = [  # gate, upstream, {input: (local, downstream)}
    ("f = 1.00 / t7", "1.00", {"t7": ("-0.53", "-0.53")}),
    ("t7 = 1.00 + t6", "-0.53", {"t6": ("1.00", "-0.53")}),
    ("t6 = exp(t5)", "-0.53", {"t5": ("0.37", "-0.20")}),
    ("t5 = -t4", "-0.20", {"t4": ("-1.00", "0.20")}),
    ("t4 = t3 + w2", "0.20", {"t3": ("1.00", "0.20"), "w2": ("1.00", "0.20")}),
    ("t3 = t1 + t2", "0.20", {"t1": ("1.00", "0.20"), "t2": ("1.00", "0.20")}),
    ("t2 = w1 * x1", "0.20", {"w1": ("-2.00", "-0.39"), "x1": ("-3.00", "-0.59")}),
    ("t1 = w0 * x0", "0.20", {"w0": ("-1.00", "-0.20"), "x0": ("2.00", "0.39")}),
]


def expected_numbers(k: int) -> tuple:
    if k <= len(FORWARD):
        formula, out = FORWARD[k - 1]
        return "forward", formula, out
    return ("backward",) + BACKWARD[k - len(FORWARD) - 1]


def test_sigmoid_neuron_steps_with_keys_and_buttons(browser, tmp_path):
    from selenium.webdriver.common.keys import Keys

    f, _ = neuron()
    page = tmp_path / "neuron.html"
    cr.draw(f, page)
    html = page.read_text()
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html
    browser.get(page.as_uri())
    assert browser.find_element(*by("#indicator")).text == "step 0 of 16"
    body = browser.find_element(*by("body"))
    buttons = {b.text: b for b in browser.find_elements(*by("#controls button"))}
    assert {"Previous", "Next", "Play"} <= set(buttons)

    seen = []
    for k in range(1, 17):   # the forward pass with the key, the backward with the button
        if k <= 8:
            body.send_keys(Keys.ARROW_RIGHT)
        else:
            buttons["Next"].click()
        assert browser.find_element(*by("#indicator")).text == f"step {k} of 16"
        phase, formula, numbers = read_step(browser)
        seen.append((phase, formula, numbers))
        want = expected_numbers(k)
        assert (phase, formula) == want[:2], (k, phase, formula)
        if phase == "forward":
            assert numbers[-1] == f"out={want[2]}", (k, numbers)
        else:
            _, _, upstream, wires = want
            assert numbers[0] == f"upstream={upstream}", (k, numbers)
            for name, (local, down) in wires.items():
                # the notes' product, in the order they write it
                assert [f"upstream-factor:{name}={upstream}", f"local:{name}={local}",
                        f"down:{name}={down}"] == \
                    [n for n in numbers if n.split("=")[0].endswith(":" + name)], (k, numbers)
        # the current gate and its wires are highlighted in the picture
        assert len(browser.find_elements(*by("#graph g.node.cr-current"))) == 1
        assert browser.find_elements(*by("#graph g.edge.cr-wire"))
    assert seen[7][2][-1] == "out=0.73" and seen[-1][2][-1] == "down:x0=0.39"

    # back with the key and the button; the panel follows
    body.send_keys(Keys.ARROW_LEFT)
    assert browser.find_element(*by("#indicator")).text == "step 15 of 16"
    assert read_step(browser)[1] == "t2 = w1 * x1"
    buttons["Previous"].click()
    assert browser.find_element(*by("#indicator")).text == "step 14 of 16"
    assert read_step(browser)[2][0] == "upstream=0.20"

    # Play walks on by itself and stops at the end
    buttons["Play"].click()
    assert buttons["Play"].text == "Pause"
    deadline = time.time() + 10
    while browser.find_element(*by("#indicator")).text != "step 16 of 16":
        assert time.time() < deadline, "Play did not reach the last step"
        time.sleep(0.2)
    time.sleep(1.5)
    assert buttons["Play"].text == "Play"


def test_numbers_on_the_picture_appear_as_the_walk_reaches_them(browser, tmp_path):
    f, _ = neuron()
    page = tmp_path / "neuron.html"
    cr.draw(f, page)
    browser.get(page.as_uri())

    def shown(colour):
        return [t.text for t in browser.find_elements(*by(f'#graph text[fill="{colour}"]'))
                if t.is_displayed()]
    # before the walk: the leaves' values only, no gradient
    assert "2.00" in shown("#1a7f37") and "0.73" not in shown("#1a7f37")
    assert shown("#cf222e") == []
    browser.find_element(*by("#next")).click()
    assert "-2.00" in shown("#1a7f37")
    for _ in range(8):
        browser.find_element(*by("#next")).click()
    assert "0.73" in shown("#1a7f37") and "-0.53" in shown("#cf222e")
    assert "-0.20" not in shown("#cf222e")     # w0's gradient arrives last


def test_clicking_a_node_shows_value_gradient_and_line(browser, tmp_path):
    f, _ = neuron()
    page = tmp_path / "neuron.html"
    cr.draw(f, page)
    browser.get(page.as_uri())
    node = browser.find_element(
        "xpath", "//*[local-name()='g'][contains(@class,'node')]"
                 "[.//*[local-name()='text' and text()='w0']]")
    node.click()
    info = browser.find_element(*by("#info"))
    assert info.find_element(*by(".formula")).text == "w0"
    assert text(browser, '#info [data-role="node-value"]') == "2.00"
    assert text(browser, '#info [data-role="node-grad"]') == "-0.20"
    assert "test_stepper.py" in info.text and "cr.Variable(val" in info.text
    # a gate shows its formula and its line
    gate = browser.find_element(
        "xpath", "//*[local-name()='g'][contains(@class,'node')]"
                 "[.//*[local-name()='text' and text()='exp']]")
    gate.click()
    assert info.find_element(*by(".formula")).text == "t6 = exp(t5)"
    assert text(browser, '#info [data-role="node-value"]') == "0.37"
    assert text(browser, '#info [data-role="node-grad"]') == "-0.53"


def test_screenshot_for_the_readme(browser, tmp_path):
    f, _ = neuron()
    page = tmp_path / "neuron.html"
    cr.draw(f, page)
    browser.get(page.as_uri())
    for _ in range(16):   # the last backward step: the mul gate switches its inputs
        browser.find_element(*by("#next")).click()
    size = browser.get_window_size()
    browser.set_window_size(1100, 480)   # the picture and the panel, without the empty page
    shot = tmp_path / "stepper.png"
    try:
        assert browser.save_screenshot(str(shot))
    finally:
        browser.set_window_size(size["width"], size["height"])
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    if os.environ.get("CHAINRULE_SCREENSHOT"):   # refresh the README's picture on request
        (DOCS / "stepper.png").write_bytes(png)


def test_module_boxes_open_in_the_page(browser, tmp_path):
    cr.manual_seed(0)
    model = cr.nn.Sequential(cr.nn.Linear(3, 4), cr.nn.ReLU(), cr.nn.Linear(4, 2))
    x = cr.tensor(np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32),
                  name="x")
    loss = cr.cross_entropy(model(x), np.array([0, 1, 0, 1, 1]))
    page = tmp_path / "mlp.html"
    cr.draw(loss, page, group="module")
    browser.get(page.as_uri())
    boxes = browser.find_elements(*by("#graph g.node[id^='g_']"))
    assert sorted(b.get_attribute("id") for b in boxes) == ["g_0", "g_2"]
    gates_before = len(browser.find_elements(*by("#graph g.node")))
    boxes[0].click()                       # open one module: its gates appear
    assert len(browser.find_elements(*by("#graph g.node"))) > gates_before
    assert browser.find_elements(*by("#graph g.cluster"))
    # stepping highlights a gate inside an open box, or the box around a closed one
    for _ in range(3):
        browser.find_element(*by("#next")).click()
    assert len(browser.find_elements(*by("#graph g.cr-current"))) == 1
    collapse = [b for b in browser.find_elements(*by("#views button"))
                if b.text == "Collapse modules"]
    collapse[0].click()
    assert len(browser.find_elements(*by("#graph g.node"))) == gates_before
    assert len(browser.find_elements(*by("#graph g.cr-current"))) == 1
    # a large tensor shows as shape, summary and a heat map in the panel
    for _ in range(20):
        browser.find_element(*by("#next")).click()
    assert browser.find_elements(*by("#panel table.grid")) or \
        browser.find_elements(*by("#panel canvas"))
