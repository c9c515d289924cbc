"""A small, deterministic TinyStories-like corpus that storytok writes itself.

`make demo` must run the whole pipeline on a fresh machine with no network and no data, so
the demo cannot depend on the 2 GB download or on files outside the project. This module
writes short children's stories from word lists and sentence templates: names and
pronouns, animals, places and things, dialogue in quotes, contractions, a few numbers,
paragraphs separated by newlines and `<|endoftext|>` between stories, laid out like the
real TinyStories files ("story\\n<|endoftext|>\\n"). The same seed always gives the same
bytes, so demo outputs are reproducible. It is not meant to be good literature, only to
exercise the tokenizer the way TinyStories does (a small vocabulary, many repeats).
"""
from __future__ import annotations

import filecmp
import random
from pathlib import Path

from storytok.fsutil import tmp_path

EOT = "<|endoftext|>"

GIRLS = ["Lily", "Mia", "Sue", "Anna", "Lucy", "Emma", "Zoe", "Rosa", "Ella", "Amy", "Kim", "Nina",
         "Ruby", "Jane", "Molly", "Daisy", "Ivy", "Sara", "Tina", "Maya"]
BOYS = ["Tom", "Ben", "Max", "Sam", "Leo", "Jack", "Tim", "Bob", "Finn", "Jake", "Oscar", "Noah",
        "Ollie", "Pete", "Ravi", "Joe", "Dan", "Eli", "Hugo", "Kai"]
KINDS = ["girl", "boy", "cat", "dog", "bunny", "bird", "fish", "bear", "frog", "duck", "mouse", "fox",
         "puppy", "kitten", "lion", "owl", "turtle", "pig", "horse", "squirrel"]
ADJ = ["little", "happy", "kind", "brave", "shy", "curious", "silly", "small", "big", "friendly",
       "gentle", "clever", "sleepy", "cheerful", "tiny", "proud", "busy", "quiet", "funny", "bright"]
THINGS = ["ball", "kite", "box", "hat", "cake", "toy car", "flower", "shell", "book", "drum", "balloon",
          "apple", "stick", "blanket", "key", "crayon", "boat", "rock", "cookie", "leaf", "bell", "map",
          "cup", "sock", "star", "ring", "feather", "basket", "lamp", "spoon"]
THING_ADJ = ["red", "blue", "shiny", "soft", "old", "new", "yellow", "green", "round", "sparkly",
             "pretty", "strange", "heavy", "warm", "colorful", "little", "funny", "special"]
PLACES = ["park", "garden", "forest", "beach", "lake", "farm", "yard", "kitchen", "school", "river",
          "hill", "meadow", "zoo", "town", "pond", "house", "field", "store", "playground", "woods"]
ACTIVITIES = ["play outside", "run fast", "sing songs", "draw pictures", "jump in puddles", "read books",
              "climb trees", "help mom", "dance", "swim", "bake cookies", "build towers", "look at the sky",
              "pick flowers", "play with friends", "ride a bike", "chase butterflies", "hum a tune"]
FEELINGS = ["happy", "sad", "scared", "excited", "angry", "surprised", "worried", "proud", "tired", "glad"]
PROBLEMS = ["was stuck in a tree", "was broken", "fell into the water", "was too high to reach",
            "rolled away down the hill", "got lost in the tall grass", "was covered in mud",
            "was under a big rock", "flew away with the wind", "was too heavy to lift"]
FIXES = ["used a long stick", "asked a tall friend for help", "pulled together with all their might",
         "made a plan and tried again", "waited for the wind to stop", "got a ladder from the shed",
         "cleaned it with warm water", "looked under every bush", "shared the work", "called their mom"]
MORALS = ["it is good to share", "friends help each other", "being kind makes everyone happy",
          "it is okay to ask for help", "trying again is brave", "you should always say sorry",
          "listening to mom is smart", "working together is fun", "being patient pays off",
          "small things can make a big difference", "it is important to tell the truth"]
EXCLAIM = ["Wow", "Oh no", "Look", "Yay", "Hooray", "Oh", "Hey", "Oops", "Yes", "Uh-oh"]
TIMES = ["One day", "One sunny morning", "Later that day", "The next day", "One evening", "After lunch",
         "On a rainy day", "One windy afternoon", "Early in the morning", "That night"]


class _Character:
    def __init__(self, rng: random.Random):
        self.kind = rng.choice(KINDS[:2] if rng.random() < 0.4 else KINDS[2:])
        girl = self.kind == "girl" or (self.kind != "boy" and rng.random() < 0.5)
        self.name = rng.choice(GIRLS if girl else BOYS)
        self.he, self.him, self.his = ("she", "her", "her") if girl else ("he", "him", "his")
        self.adj = rng.choice(ADJ)


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def write_story(rng: random.Random) -> str:
    """One story: 2-5 paragraphs of simple sentences with some dialogue."""
    a, b = _Character(rng), _Character(rng)
    while b.name == a.name:
        b = _Character(rng)
    thing = rng.choice(THINGS)
    tadj = rng.choice(THING_ADJ)
    place = rng.choice(PLACES)
    paras: list[list[str]] = []

    opening = rng.choice([
        f"Once upon a time, there was a {a.adj} {a.kind} named {a.name}.",
        f"Once upon a time, in a {rng.choice(ADJ)} {place}, there lived a {a.kind} named {a.name}.",
        f"{a.name} was a {a.adj} {a.kind} who lived near the {place}.",
        f"There was once a {a.adj} {a.kind}. {_cap(a.his)} name was {a.name}.",
    ])
    p = [opening, f"{_cap(a.he)} loved to {rng.choice(ACTIVITIES)}."]
    if rng.random() < 0.5:
        p.append(f"{_cap(a.he)} had {rng.randint(2, 9)} {rng.choice(THINGS)}s and a {rng.choice(THING_ADJ)} {thing}.")
    paras.append(p)

    p = [f"{rng.choice(TIMES)}, {a.name} went to the {place}.",
         f"There, {a.he} saw a {tadj} {thing}.",
         f'"{rng.choice(EXCLAIM)}!" said {a.name}. "What a {tadj} {thing}! I want to {rng.choice(ACTIVITIES)} with it."']
    if rng.random() < 0.6:
        p.append(f"{a.name} felt {rng.choice(FEELINGS)}.")
    paras.append(p)

    problem = rng.choice(PROBLEMS)
    p = [f"But then the {thing} {problem}.",
         f"{a.name} was {rng.choice(['sad', 'worried', 'scared', 'upset'])}. {_cap(a.he)} didn't know what to do."]
    if rng.random() < 0.7:
        p += [f"Just then, {b.name} the {b.kind} came by.",
              f'"Why are you {rng.choice(FEELINGS)}, {a.name}?" asked {b.name}.',
              f'"My {thing} is in trouble," said {a.name}. "Can you help me?"',
              f'"Yes, I can help you! Let\'s try together," said {b.name} with a smile.']
        helper = f"{a.name} and {b.name}"
    else:
        p.append(f'"I will not give up," {a.he} said. "I\'m {a.adj} and I can do it!"')
        helper = a.name
    paras.append(p)

    p = [f"{helper} {rng.choice(FIXES)}.",
         f"After {rng.choice(['a while', 'a long time', 'a few tries', 'one more try', 'a minute'])}, "
         f"the {thing} was safe again."]
    if rng.random() < 0.5:
        p.append(f'"Thank you so much!" said {a.name}. {_cap(a.he)} gave {b.name if helper != a.name else "mom"} a big hug.')
    paras.append(p)

    endings = [f"From that day on, {a.name} knew that {rng.choice(MORALS)}.",
               f"{a.name} was very {rng.choice(['happy', 'proud', 'glad'])}. {_cap(a.he)} played with the {thing} all day.",
               f"They {rng.choice(ACTIVITIES)} until the sun went down. It was the best day ever.",
               f"{a.name} learned that {rng.choice(MORALS)}. The end."]
    if rng.random() < 0.6:
        paras.append([rng.choice(endings)])
    else:
        paras[-1].append(rng.choice(endings))
    sep = "\n\n" if rng.random() < 0.3 else "\n"
    return sep.join(" ".join(s for s in para) for para in paras)


def write_corpus(path: Path, n_bytes: int, seed: int = 0) -> bool:
    """Write stories to `path` until it holds at least `n_bytes` bytes.

    Layout as in TinyStories: every story is followed by "\\n<|endoftext|>\\n". Written to a
    temporary name and renamed, so an interrupted run leaves no truncated corpus behind. If
    `path` already holds exactly these bytes it is left untouched (same mtime), so the later
    stages see an unchanged input and have nothing to redo. Returns True if it was written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    written = 0
    tmp = tmp_path(path)
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        buf: list[str] = []
        while written < n_bytes:
            story = write_story(rng) + f"\n{EOT}\n"
            buf.append(story)
            written += len(story.encode("utf-8"))
            if len(buf) >= 1000:
                f.write("".join(buf))
                buf.clear()
        f.write("".join(buf))
    if path.exists() and filecmp.cmp(tmp, path, shallow=False):
        tmp.unlink()
        return False
    tmp.replace(path)
    return True
