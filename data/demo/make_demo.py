"""Recreate the demo datasets that ship with tlreg (run: ``python data/demo/make_demo.py``).

- ``digits/<digit>/<index>.png``: 10 classes x 12 real handwritten digits from scikit-learn's
  bundled ``load_digits()`` (no download), chosen with seed 0, upscaled 8x8 -> 32x32 with
  nearest-neighbour so they still look like digits, greyscale PNG (models convert to RGB).
- ``topics.csv``: 120 hand-written English sentences, 30 per topic, columns ``text,label``,
  rows shuffled with seed 0.

Both are small (well under 2 MB together) because the README's first command ranks models on
them, and deterministic so a rerun gives the same files and the same dataset fingerprint.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

PER_DIGIT = 12
SIZE = 32
SEED = 0

TOPICS: dict[str, list[str]] = {
    "sport": [
        "The striker curled a free kick into the top corner in the final minute of stoppage time.",
        "After three sets on clay, she finally broke his serve and sealed the championship.",
        "Our local rugby club is looking for volunteers to help line the pitch on Saturday mornings.",
        "He trained for months to run the marathon in under three hours and missed by forty seconds.",
        "The referee reviewed the footage twice before awarding the penalty to the visiting side.",
        "Swimmers from twelve countries will compete in the relay heats at the aquatic centre tomorrow.",
        "The coach blamed sloppy defending for the team's fourth consecutive loss on the road.",
        "A late surge carried the cyclist past the peloton on the final climb of the stage.",
        "Tickets for the derby sold out within an hour of going on sale.",
        "The goalkeeper dived low to his left and palmed the shot around the post.",
        "She set a new national record in the high jump at the indoor championships.",
        "Both teams traded three-pointers in a frantic fourth quarter that went to overtime.",
        "The batsman was caught at slip after a patient innings of eighty-four runs.",
        "Injuries to two key midfielders have left the manager short of options for the cup tie.",
        "Fans lined the streets to cheer the open-top bus carrying the league champions.",
        "The young boxer won on points after twelve bruising rounds against the former champion.",
        "Our hockey team practises on the frozen lake whenever the ice is thick enough.",
        "He hit a hole-in-one on the seventh, the first of his professional golf career.",
        "The transfer window closes on Friday, and the club still needs a reliable centre-back.",
        "Sprinters were disqualified for false starts in two of the three semi-final heats.",
        "The umpire called the pitch a strike, and the crowd erupted in boos.",
        "Our daughter scored her first goal for the under-eleven squad last weekend.",
        "The rowing crew has been training at dawn on the river ahead of the boat race.",
        "A hamstring strain ruled the captain out of the opening match of the tournament.",
        "The skier lost a pole halfway down but still finished with the fastest time.",
        "Supporters booed the decision to substitute the club's top scorer at half time.",
        "The volleyball final went to a fifth set, decided by a single blocked spike.",
        "She has qualified for the Olympic team in both the triathlon and the open-water swim.",
        "The wrestler pinned his opponent in under a minute to claim the title.",
        "Despite the heavy defeat, the fans sang loudly until the final whistle.",
    ],
    "cooking": [
        "Brown the onions slowly over low heat until they turn soft, sweet and golden.",
        "Let the dough rise in a warm spot for about an hour, until it doubles in size.",
        "My grandmother always added a pinch of nutmeg to her creamy cheese sauce.",
        "Sear the steak in a very hot cast-iron pan, then rest it for five minutes before slicing.",
        "This lentil soup tastes even better the next day, once the spices have settled.",
        "Whisk the egg whites until stiff peaks form, then gently fold them into the batter.",
        "We marinated the chicken overnight in yogurt, garlic, lemon juice and smoked paprika.",
        "If the risotto looks dry, stir in another ladle of warm stock and keep stirring.",
        "Toast the cumin seeds in a dry pan until they smell nutty and fragrant.",
        "The recipe calls for brown sugar, but honey works well if you lower the oven temperature.",
        "Blanch the green beans for two minutes, then plunge them into iced water to keep their colour.",
        "He burned the first batch of pancakes because the butter in the pan was far too hot.",
        "Knead the pasta dough for ten minutes until it feels smooth and elastic.",
        "Season the tomato sauce at the end, since it reduces and concentrates as it simmers.",
        "A squeeze of lime and some chopped coriander brighten up any bowl of black beans.",
        "Line the baking tin with parchment so the brownies lift out cleanly once cooled.",
        "She slow-roasted the lamb shoulder with rosemary for six hours until it fell apart.",
        "Grate the cold butter into the flour for the flakiest scones you have ever made.",
        "Our curry was far too spicy, so we stirred in coconut milk to calm it down.",
        "Peel the ginger with the edge of a teaspoon rather than a knife to avoid waste.",
        "The crust of this sourdough gets its crackle from a lid kept on for the first twenty minutes.",
        "Deglaze the pan with a splash of white wine and scrape up all the browned bits.",
        "Salt the aubergine slices and leave them to drain for half an hour before frying them.",
        "My first attempt at homemade dumplings leaked, but the filling was delicious.",
        "Chill the cookie dough overnight so the biscuits spread less and taste richer.",
        "Poach the eggs in barely simmering water with a dash of vinegar.",
        "This salad dressing is just olive oil, mustard, honey and a little red wine vinegar.",
        "Roast the peppers until their skins blister, then peel them once they have steamed in a bowl.",
        "Add the fresh basil right before serving, because heat turns the leaves black.",
        "The custard split because I let it boil instead of stirring it gently over low heat.",
    ],
    "technology": [
        "The new laptop update finally fixed the bug that drained the battery overnight.",
        "Our team migrated the database to a managed cloud service over the weekend.",
        "The phone's camera uses machine learning to brighten photos taken in dim light.",
        "Engineers released a security patch after researchers found a flaw in the router firmware.",
        "He wrote a small Python script to rename thousands of files automatically.",
        "The startup's chip promises faster inference while using half the power of its rivals.",
        "My password manager generates long random passwords and syncs them across devices.",
        "The website crashed under heavy traffic within minutes of the product launch.",
        "Contributors reviewed the pull request and suggested splitting it into smaller commits.",
        "Wireless earbuds now offer noise cancellation that rivals much larger headphones.",
        "The company is replacing its ageing servers with energy-efficient hardware in a new data centre.",
        "Restarting the modem solved the connection problem that had puzzled us all afternoon.",
        "A software engineer explained how the compiler turns source code into machine instructions.",
        "The smartwatch tracks heart rate, sleep and blood oxygen, then sends a weekly report.",
        "Developers can now run the language model locally on a laptop without an internet connection.",
        "The operating system upgrade changed the keyboard shortcuts, which annoyed many users.",
        "Hackers stole customer emails by exploiting an unpatched server at the retailer.",
        "Our office switched to fibre broadband, and video calls no longer freeze.",
        "The robot vacuum maps each room with a laser sensor before it starts cleaning.",
        "She tracked down the memory leak by profiling the application for several hours.",
        "The electric car receives software updates over the air, just like a smartphone.",
        "Solid-state drives have made booting a computer almost instant compared with spinning disks.",
        "The messaging app's latest version encrypts every conversation end to end by default.",
        "A faulty graphics driver caused the screen to flicker after every reboot.",
        "Quantum computers remain experimental, but researchers keep adding more stable qubits.",
        "The printer refuses to connect to the new Wi-Fi network unless I reinstall its driver.",
        "Programmers on the project use automated tests to catch regressions before each release.",
        "The tablet's processor handles video editing smoothly, even with several 4K clips.",
        "Cloud storage costs rose sharply, so the team started deleting old backups.",
        "The browser extension blocks trackers and speeds up page loading on news sites.",
    ],
    "weather": [
        "Heavy rain is expected overnight, with flooding possible in low-lying coastal areas.",
        "A thick fog rolled in off the sea and hung over the harbour until noon.",
        "Temperatures will climb above thirty-five degrees by Thursday, so stay hydrated.",
        "The first frost of autumn left the lawns white and crunchy this morning.",
        "Forecasters have issued a storm warning as gusts could reach ninety kilometres an hour.",
        "After weeks of drought, the farmers welcomed a steady drizzle that lasted all day.",
        "Snow is forecast for the mountains, and chains may be required on the high passes.",
        "The humidity made the afternoon feel far hotter than the thermometer suggested.",
        "A bright rainbow appeared over the valley as the thunderstorm moved east.",
        "Expect clear skies and light winds tomorrow, ideal for an evening walk.",
        "The hurricane strengthened over warm water and is now heading towards the islands.",
        "Hailstones the size of marbles dented cars across the town during the brief storm.",
        "Overnight lows will drop below freezing, so protect any tender plants in the garden.",
        "The monsoon arrived two weeks late this year, delaying the planting of rice.",
        "Strong westerly winds will make conditions choppy for sailors along the coast.",
        "It has been the wettest spring on record, with rain on twenty-six days in April.",
        "A heatwave across southern Europe has prompted warnings about wildfires.",
        "The sky turned an eerie yellow just before the tornado touched down.",
        "Scattered showers this morning should give way to sunny spells by the afternoon.",
        "Black ice on the roads caused several accidents during the early commute.",
        "The barometer has been falling all day, which usually means a change in the weather.",
        "A blizzard buried the village under a metre of snow and closed every road.",
        "Meteorologists say the El Niño pattern could bring a milder winter than usual.",
        "Lightning struck the old oak tree during last night's violent thunderstorm.",
        "Cloud cover will keep temperatures mild tonight, with no risk of frost.",
        "The wind chill made it feel like minus fifteen at the bus stop this morning.",
        "Dry, sunny weather should continue through the weekend before rain returns on Monday.",
        "Flash floods swept through the canyon after a sudden downpour upstream.",
        "The UV index will be very high at midday, so wear sunscreen and a hat.",
        "Morning mist will clear quickly, leaving a warm and cloudless afternoon.",
    ],
}


def make_digits(out: Path) -> int:
    """Write ``PER_DIGIT`` images per digit; stale PNGs from an earlier run are removed first."""
    digits = load_digits()
    rng = np.random.default_rng(SEED)
    written = 0
    for digit in range(10):
        folder = out / "digits" / str(digit)
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.png"):
            old.unlink()
        chosen = np.sort(rng.choice(np.flatnonzero(digits.target == digit), PER_DIGIT, replace=False))
        for index in chosen:
            write_digit(digits.images[index], folder / f"{index:04d}.png")
            written += 1
    return written


def write_digit(image8x8: np.ndarray, path: Path) -> None:
    """One scikit-learn digit as the demo stores it: 0-16 scaled to 0-255, 8x8 upscaled to ``SIZE``
    with nearest-neighbour, greyscale PNG (``bench/demo_truth.py`` writes other digits the same way)."""
    pixels = np.rint(image8x8 * (255 / 16)).astype(np.uint8)
    image = Image.fromarray(pixels, mode="L").resize((SIZE, SIZE), Image.Resampling.NEAREST)
    image.save(path, optimize=True)


def make_topics(out: Path) -> int:
    """Write ``topics.csv``: every sentence with its topic, shuffled with a fixed seed."""
    rows = [(text, label) for label, texts in TOPICS.items() for text in texts]
    order = np.random.default_rng(SEED).permutation(len(rows))
    with (out / "topics.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["text", "label"])
        writer.writerows(rows[i] for i in order)
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="output folder")
    args = parser.parse_args()
    n_images = make_digits(args.out)
    n_texts = make_topics(args.out)
    print(f"wrote {n_images} digit images and {n_texts} sentences under {args.out}")


if __name__ == "__main__":
    main()
