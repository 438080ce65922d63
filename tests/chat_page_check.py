#!/usr/bin/env python3
"""gpt-serve's chat page in a real browser, for tests/cli/chat-page.sh:
headless Chromium driven by Selenium loads URL/, sends a message, and
watches the reply stream into the page (its text grows over several
looks before the tokens/s line appears), then sends a second message in
the same conversation.  Saves a screenshot to SHOT.

    chat_page_check.py URL SHOT
"""
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By


def need(cond, what):
    if not cond:
        print("chat_page_check: " + what, file=sys.stderr)
        sys.exit(1)


def main():
    url, shot = sys.argv[1], sys.argv[2]
    o = Options()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1000,800"):
        o.add_argument(a)
    o.binary_location = "/usr/bin/chromium"
    d = webdriver.Chrome(options=o, service=Service("/usr/bin/chromedriver"))
    try:
        d.get(url + "/")
        need(d.title == "gpt-serve", "title %r" % d.title)
        t0 = time.time()
        while "context" not in d.find_element(By.ID, "model").text and time.time() - t0 < 10:
            time.sleep(0.05)
        need("context" in d.find_element(By.ID, "model").text,
             "the page did not read /v1/models: %r" % d.find_element(By.ID, "model").text)
        d.find_element(By.ID, "max_tokens").clear()
        d.find_element(By.ID, "max_tokens").send_keys("80")
        box = d.find_element(By.ID, "input")
        box.send_keys("Tell me about the painter.")
        d.find_element(By.ID, "send").click()
        seen = []
        t0 = time.time()
        while time.time() - t0 < 60:
            bubbles = d.find_elements(By.CSS_SELECTOR, ".msg.assistant")
            text = bubbles[-1].text if bubbles else ""
            if not seen or seen[-1] != text:
                seen.append(text)
            stats = d.find_elements(By.CSS_SELECTOR, ".stats")
            if stats and "tokens/s" in stats[-1].text and d.find_element(By.ID, "send").is_enabled():
                break
            time.sleep(0.01)
        users = d.find_elements(By.CSS_SELECTOR, ".msg.user")
        need(len(users) == 1 and users[0].text == "Tell me about the painter.",
             "the user's message %r" % [u.text for u in users])
        reply = d.find_elements(By.CSS_SELECTOR, ".msg.assistant")[-1]
        need("error" not in reply.get_attribute("class"), "an error: %r" % reply.text)
        need(reply.text.strip(), "no reply")
        grown = [s for s in seen if s]
        need(len(grown) >= 2 and len(grown[0]) < len(grown[-1]),
             "the reply did not stream in (seen %d states)" % len(grown))
        stats = d.find_elements(By.CSS_SELECTOR, ".stats")[-1].text
        need("tokens/s" in stats, "no tokens/s: %r" % stats)
        # the conversation goes on
        box.send_keys("And then?")
        d.find_element(By.ID, "send").click()
        t0 = time.time()
        time.sleep(0.2)
        while time.time() - t0 < 60:
            if len(d.find_elements(By.CSS_SELECTOR, ".stats")) == 2 and \
                    d.find_element(By.ID, "send").is_enabled():
                break
            time.sleep(0.05)
        second = d.find_elements(By.CSS_SELECTOR, ".msg.assistant")
        need(len(second) == 2 and "error" not in second[1].get_attribute("class") and
             second[1].text.strip(), "no second reply: %r" % [b.text for b in second])
        d.save_screenshot(shot)
        print("reply streamed over %d looks; %s" % (len(grown), stats))
    finally:
        d.quit()


if __name__ == "__main__":
    main()
