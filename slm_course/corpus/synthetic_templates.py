"""The prose of the embedded corpus: the words, the cast, and the plot shapes stories are made of.

Everything a synthetic story *says* is here: the names, places, toys and morals a 3-4 year old
knows (word lists), how a character or a thing is spelled out in a sentence (``Character``,
``Thing``), the cast and props of one story (``Scene``) and the few dozen plots that turn a scene
into paragraphs (``PLOTS``). How scenes are drawn at random and strung into an endless, seeded
stream of stories is the engine's job (``slm_course.corpus.synthetic``), so a new plot or word is
an edit here that touches no randomness code.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

# Word lists. Long ones are written as space-separated words; a varied cast, place and props is
# what makes a 4,096-token BPE trainable on this corpus (every name is a few more merges).
GIRLS = tuple("""
    Lily Mia Anna Sue Lucy Emma Zoe Kate Amy Ella Rose Jane Sara Mary Lisa Daisy Molly Ruby Nina Ivy
    Abby Ada Alice Alma Amber Andrea Angela Annie April Aria Audrey Ava Bea Becky Beth Betty Bonnie
    Brooke Callie Camila Carla Carmen Carol Cathy Chloe Clara Claire Cora Dana Dora Dottie Edie Eliza
    Ellie Elsa Emily Erin Eva Evie Faith Fay Fiona Flora Frida Gemma Georgia Gina Grace Greta Hannah
    Harper Hazel Heidi Helen Holly Hope Iris Isla Jade Jenna Jess Jill Joan Josie Joy Julia June Kara
    Katie Kim Kira Lacey Laura Layla Leah Lena Lila Lina Lola Lori Luna Lydia Mabel Macy Maddie Maggie
    Maisie Maria Marta Maya Meg Mila Millie Mina Miri Nadia Nell Nora Olivia Paige Pam Paula Penny
    Piper Polly Quinn Rachel Rita Rosa Sadie Sally Sasha Selma Sienna Sofia Sophie Stella Susie Tara
    Tess Tilly Tina Trudy Una Vera Vicky Viola Violet Wendy Willa Winnie Yara Zara Zelda Agnes Bridget
    Celia Delia Esther Gloria Ingrid Judy Lottie Marnie Nancy Opal Peggy Rhoda Tamsin Ursula Wanda
    Adele Alana Alexis Alina Anya Ariel Astrid Belinda Bethany Bianca Brenda Briar Candice Cassie
    Cecily Cherry Cindy Cleo Daphne Darla Debbie Denise Dina Dolly Donna Dulcie Eden Elena Eloise
    Elvie Enid Erica Eunice Fanny Felicity Freya Gabby Gail Gertie Gilda Gretchen Gwen Hattie Hilda
    Imogen Irene Isabel Jackie Janet Jasmine Jean Jemima Jolene Juliet Karen Kelly Kitty Lara Leila
    Libby Linda Lorna Lucia Mae Margot Marion Martha Matilda Melody Mimi Minnie Miranda Myra Nettie
    Noelle Odette Orla Pearl Petra Phoebe Pippa Priya Rena Rhea Rina Rosalie Rowan Sabrina Serena
    Saskia Scarlett Sheila Sylvie Tabitha Tamara Thea Tilda Trixie Valerie Vivian Wilma Xena Yasmin
    Abigail Beatrix Bettina Carina Clarissa Constance Dorothy Edwina Estelle Florence Francine
    Genevieve Georgina Harriet Henrietta Hermione Honora Isadora Josephine Katrina Lavinia Leonora
    Lucinda Madeline Marigold Mathilde Meredith Natalie Octavia Ophelia Paloma Philippa Priscilla
    Rosamund Rosemary Samantha Seraphina Theodora Veronica Winifred Ysolde Zinnia
""".split())
BOYS = tuple("""
    Ben Tom Tim Sam Max Jack Leo Jake Bob Joe Timmy Billy Mark Dan Finn Noah Ted Alex Peter Luke
    Aaron Adam Alan Albert Andy Arlo Arthur Austin Barry Bill Blake Brad Brian Bruno Caleb Carl Carlos
    Casey Charlie Chris Cody Colin Cole Dave David Dean Derek Dexter Diego Drew Dylan Eddie Eli Elliot
    Eric Ethan Evan Felix Frank Fred Gabe Gary George Hank Harry Henry Hugo Ian Isaac Jacob James
    Jamie Jason Jay Jeff Jerry Jesse Jim Joey John Jonah Jordan Josh Juan Jude Kai Karl Keith Ken Kevin
    Kyle Lance Larry Leon Levi Liam Lou Louis Lucas Marco Mario Matt Miles Mike Milo Nate Ned Neil
    Nick Nico Oliver Omar Oscar Otis Owen Pablo Paul Pete Phil Ralph Ray Reed Rick Riley Rob Rocco
    Roger Ron Ross Roy Ruben Rudy Russ Ryan Scott Sean Seth Silas Simon Stan Steve Theo Toby Todd
    Tony Travis Troy Tyler Victor Vince Wade Walter Wes Will Wyatt Zach Ahmed Bernard Cedric Desmond
    Edgar Fergus Gordon Horace Ivan Kenny Lionel Manny Norman Ollie Percy Quentin Rupert Tobias
    Abel Alfie Ambrose Angus Anton Archie Barney Basil Benji Bertie Boris Bradley Brendan Cal Calvin
    Cameron Chad Clark Clive Conrad Cooper Curtis Damon Darren Dennis Dominic Donald Douglas Duncan
    Elmer Emil Ernie Everett Fabian Floyd Francis Frankie Gavin Gerald Gilbert Glen Graham Grant Gregory
    Harold Harvey Hector Herbert Howard Hudson Irving Jacques Jarvis Jerome Joel Julian Kaden Kurt
    Lawrence Lenny Lloyd Logan Lyle Malcolm Marvin Maurice Monty Morgan Murray Nathan Nigel Noel
    Orson Patrick Perry Quincy Randall Reggie Rodney Rory Rufus Samson Shane Spencer Stuart
    Terry Thomas Trevor Vernon Warren Wilbur Xavier Yusuf Zane
    Alastair Augustus Bartholomew Benedict Cornelius Cuthbert Cyril Dashiell Ebenezer Ezekiel
    Ferdinand Frederick Gideon Godfrey Hamish Humphrey Ignatius Jeremiah Leopold Lorenzo Magnus
    Maximilian Montgomery Nathaniel Nicholas Octavius Peregrine Reginald Roderick Sebastian Solomon
    Sylvester Thaddeus Timothy Ulysses Valentine Wellington Winston Zachariah
""".split())
ANIMALS = tuple("""
    dog cat bunny bear duck frog mouse puppy kitten fox lamb pig owl turtle squirrel rabbit hamster
    hedgehog raccoon deer goat cow horse pony chick hen goose parrot robin bird bee ladybug butterfly
    snail beaver otter mole badger chipmunk koala panda penguin seal lion tiger zebra giraffe monkey
    elephant kangaroo donkey sheep calf piglet duckling lizard swan crab
""".split())
PET_NAMES = tuple("""
    Spot Fluffy Coco Pip Bella Buddy Sunny Whiskers Hoppy Rex Bubbles Patch Muffin Peanut Snowy Ziggy
    Biscuit Button Cuddles Dusty Fudge Goldie Gizmo Honey Jelly Jingles Lucky Mittens Nibbles Noodle
    Nutmeg Oreo Pebbles Pepper Pickles Pumpkin Rusty Scout Shadow Skipper Smudge Snickers Sparky
    Speedy Sprinkles Squeaky Taffy Tiger Toffee Tootsie Twinkle Waffles Wiggles Bandit Boots Bingo
    Blossom Bonbon Bubba Chester Chip Cinnamon Clover Comet Cricket Dot Echo Fizz Flash Flopsy
    Freckles Ginger Gumdrop Jojo Kiki Kiwi Lulu Mango Marble Midnight Misty Mocha Moose Nugget Paws
    Pixie Plum Popcorn Poppy Puddles Puff Quackers Ripple Rolo Sage Sassy Shortcake Silky Smokey
    Snowball Socks Sparkle Spike Sprout Squiggle Sugar Sunshine Tango Teddy Thumper Tinker Toto
    Truffle Tubby Velvet Wally Whisper Willow Wobble Yoyo Zippy Zoom Acorn Barnaby Dumpling Fidget
    Blinky Bramble Brownie Buttons Caramel Cocoa Crumpet Dandelion Dazzle Doodle Fable Flicker Fuzzy
    Gadget Gingersnap Glimmer Hopscotch Humbug Jellybean Jiggles Kismet Licorice Lollipop Marshmallow
    Meadow Minty Mopsy Nimbus Pancake Periwinkle Pistachio Pogo Pompom Pretzel Quill Rascal Riddle
    Scamper Scruffy Shimmer Skittles Snuggles Sprocket Starlight Tiptoe Tumble Twiggy Wafer Widget
    Bumblebee Butterscotch Buttercup Chickpea Chocolate Clementine Dewdrop Firefly Gooseberry
    Huckleberry Hullabaloo Moonbeam Mulberry Peppermint Raspberry Rumpus Snapdragon Thistle Whirligig
""".split())
LOOKS = tuple("""
    little happy kind small curious brave funny sweet friendly gentle clever cheerful quiet shy silly
    playful jolly lively busy smart tiny bright polite helpful careful cuddly proud lucky merry calm
    bold chatty eager young loving caring thoughtful sleepy
""".split())
GROWN_UPS = (("mom", "she"), ("dad", "he"), ("grandma", "she"), ("grandpa", "he"))
# (place, the preposition that puts someone there): "in the park", "on the hill".
PLACES = (("the park", "in"), ("the garden", "in"), ("the forest", "in"), ("the farm", "on"),
          ("the pond", "by"), ("the backyard", "in"), ("the playground", "at"), ("the meadow", "in"),
          ("the hill", "on"), ("the big field", "in"), ("the lake", "by"), ("the woods", "in"),
          ("the beach", "on"), ("the river", "by"), ("the orchard", "in"), ("the valley", "in"),
          ("the farmyard", "in"), ("the pumpkin patch", "in"), ("the campsite", "at"), ("the zoo", "at"),
          ("the creek", "by"), ("the seaside", "at"), ("the village green", "on"), ("the flower garden", "in"),
          ("the school yard", "in"), ("the picnic spot", "at"), ("the sand dunes", "on"), ("the little island", "on"),
          ("the apple orchard", "in"), ("the sunny field", "in"), ("the old mill", "by"), ("the duck pond", "by"),
          ("the berry bushes", "by"), ("the windy hill", "on"), ("the green valley", "in"), ("the fair", "at"))
TOYS = (("ball", ("red", "big", "bouncy", "blue")), ("kite", ("blue", "long", "yellow", "pretty")),
        ("teddy bear", ("soft", "brown", "old", "fluffy")), ("toy car", ("little", "fast", "red", "shiny")),
        ("doll", ("pretty", "little", "pink", "old")), ("toy boat", ("little", "green", "white")),
        ("truck", ("yellow", "big", "toy", "loud")), ("hat", ("red", "funny", "big", "purple")),
        ("drum", ("loud", "little", "orange")), ("book", ("picture", "big", "old", "new")),
        ("balloon", ("red", "shiny", "green", "big")), ("blanket", ("soft", "warm", "blue")),
        ("robot", ("toy", "silver", "little")), ("train", ("toy", "wooden", "long")),
        ("puzzle", ("big", "new", "wooden")), ("spinning top", ("red", "little", "shiny")),
        ("toy plane", ("white", "little", "fast")), ("rocket", ("toy", "silver", "red")),
        ("dinosaur", ("toy", "green", "big")), ("castle", ("toy", "pink", "little")),
        ("puppet", ("funny", "sock", "little")), ("marble", ("blue", "shiny", "glass")),
        ("wagon", ("red", "little", "wooden")), ("scooter", ("blue", "fast", "new")),
        ("xylophone", ("little", "colorful", "toy")), ("sand bucket", ("red", "yellow", "little")),
        ("umbrella", ("yellow", "big", "spotted")), ("bracelet", ("shiny", "pink", "bead")),
        ("crown", ("gold", "paper", "shiny")), ("wand", ("magic", "sparkly", "silver")),
        ("lantern", ("little", "paper", "bright")), ("rocking horse", ("wooden", "old", "painted")),
        ("music box", ("little", "old", "pretty")), ("guitar", ("toy", "little", "red")),
        ("pinwheel", ("colorful", "bright", "paper")), ("snow globe", ("little", "glass", "pretty")),
        ("fire truck", ("red", "big", "shiny")), ("race car", ("fast", "red", "little")),
        ("sailboat", ("little", "wooden", "blue")), ("tea set", ("pretty", "little", "flowery")),
        ("jigsaw", ("new", "big", "hard")), ("yo-yo", ("red", "shiny", "wooden")),
        ("stuffed bunny", ("soft", "white", "floppy")), ("toy trumpet", ("shiny", "loud", "gold")))
LOST_SPOTS = ("under a big bush", "behind a tree", "next to the pond", "in the tall grass",
              "under the slide", "near a big rock", "under a pile of leaves", "by the old fence",
              "inside a hollow log", "behind a big flower pot", "under the wooden bench", "in a muddy puddle",
              "on top of a hay bale", "between two big roots", "under a red wheelbarrow", "in a bed of daisies",
              "behind the garden shed", "next to a sleeping cat")
HOME_SPOTS = ("under the bed", "behind the couch", "in the toy box", "under a pillow",
              "in the kitchen", "under the table", "inside the laundry basket", "behind the curtains",
              "in the bathtub", "on top of the fridge", "under a pile of socks", "inside a boot",
              "behind the bookshelf", "in the cookie jar")
FOODS = tuple("""
    cookie apple sandwich banana cupcake muffin carrot pear peach plum orange pancake waffle donut
    pretzel bagel biscuit lollipop cucumber tomato egg popsicle strawberry mango taco burrito dumpling
    pickle radish cherry apricot tangerine brownie
""".split()) + ("piece of cake", "candy bar", "granola bar", "hot dog", "slice of pizza", "cheese sandwich",
                "jam sandwich", "cinnamon roll", "apple pie", "rice cake", "ice cream cone", "fruit tart")
SNACKS = ("bread", "seeds", "berries", "crackers", "cheese", "nuts", "corn", "lettuce", "grapes", "oats",
          "peas", "worms", "crumbs", "apple slices", "sunflower seeds")
FLOWERS = ("red", "yellow", "pink", "purple", "white", "blue", "orange", "golden", "violet", "lavender")
SKILLS = (("ride a bike", "fell off the bike", "rode the bike all the way down the path"),
          ("swim", "went under the water and came up coughing", "swam across the pool all by herself"),
          ("jump rope", "tripped on the rope", "jumped over the rope ten times"),
          ("climb the big tree", "slipped off the first branch", "climbed up to the first branch"),
          ("tie shoes", "made a big knot", "tied a perfect bow"),
          ("catch a ball", "missed the ball", "caught the ball with both hands"),
          ("whistle", "only made a funny puff of air", "made a loud, happy whistle"),
          ("skate", "fell on the ground", "skated around the yard without falling"))
NIGHT_NOISES = (("a scratch, scratch at the window", "a little branch from the tree",
                 "The wind was moving the branch."),
                ("a thump, thump under the bed", "the cat", "The cat was playing with a toy mouse."),
                ("a tap, tap on the roof", "the rain", "It was just rain falling softly."),
                ("a squeak in the closet", "a tiny toy duck", "The dog had stepped on it."),
                ("a hoot outside", "an owl", "The owl was saying good night."))
WEATHER = (("it began to rain", "The rain stopped and a big rainbow came out."),
           ("a big storm came", "The storm went away and the sun came back."),
           ("the wind blew very hard", "The wind got calm and the sky was blue again."))
MORALS = {
    "share": "sharing is more fun than playing alone",
    "try": "if you keep trying, you can do hard things",
    "truth": "telling the truth is always the right thing to do",
    "kind": "being kind makes everyone happy",
    "careful": "it is good to be careful with the things you love",
    "patient": "good things come to those who wait",
    "help": "friends help each other",
    "brave": "being brave is not the same as not being scared",
    "ask": "you should always ask before you take something",
}


def _a(phrase: str) -> str:
    """Prefix "a" or "an" by the first letter (good enough for this fixed vocabulary)."""
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _cap(sentence: str) -> str:
    return sentence[0].upper() + sentence[1:]


@dataclass(frozen=True)
class Character:
    """Someone in a story: a child or an animal, with the pronouns the templates need."""

    name: str
    kind: str  # "girl", "boy", "dog", ...
    look: str  # "little", "kind", ...
    he: str
    his: str
    him: str

    @property
    def He(self) -> str:  # noqa: N802 - reads like the sentence it builds
        return _cap(self.he)

    @property
    def His(self) -> str:  # noqa: N802
        return _cap(self.his)

    @property
    def herself(self) -> str:
        return "himself" if self.he == "he" else "herself"

    @property
    def a_kind(self) -> str:
        """ "a little girl" """
        return _a(f"{self.look} {self.kind}")

    @property
    def intro(self) -> str:
        """ "a little girl named Lily" """
        return f"{self.a_kind} named {self.name}"


@dataclass(frozen=True)
class Thing:
    noun: str
    adj: str

    @property
    def a(self) -> str:
        return _a(f"{self.adj} {self.noun}")

    @property
    def the(self) -> str:
        return f"the {self.adj} {self.noun}"


@dataclass(frozen=True)
class Scene:
    """The cast and props of one story (drawn by ``slm_course.corpus.synthetic.draw_scene``);
    plots read them as attributes and draw their remaining choices from ``rng``."""

    rng: random.Random
    hero: Character
    friend: Character
    grown_up: str  # "mom"
    gu_he: str  # the grown-up's pronoun
    place: str  # "the park"
    at_place: str  # "in the park"
    toy: Thing
    food: str

    def pick(self, *options: str) -> str:
        return self.rng.choice(options)

    @property
    def gu_him(self) -> str:
        return "him" if self.gu_he == "he" else "her"

    @property
    def mom(self) -> str:
        """The hero's grown-up in narration: "her mom"."""
        return f"{self.hero.his} {self.grown_up}"

    @property
    def Mom(self) -> str:  # noqa: N802
        """How the hero addresses the grown-up: "Mom"."""
        return _cap(self.grown_up)

    def opening(self, at_place: bool = False) -> str:
        """The first line. With ``at_place`` it takes the hero to the scene's place, for plots
        that go on there; otherwise it introduces the hero and their toy."""
        h = self.hero
        if at_place:
            return self.pick(
                f"Once upon a time, there was {h.intro}. {h.He} loved to play {self.at_place}.",
                f"One day, {h.intro} went to {self.place} with {h.his} {self.toy.noun}.",
                f"One sunny morning, {h.name} woke up and smiled. {h.He} wanted to go to {self.place}.",
            )
        return self.pick(
            f"Once there was {h.intro}. {h.He} had {self.toy.a} that {h.he} loved very much.",
            f"{h.name} was {h.a_kind} who liked to play with {h.his} {self.toy.noun}.",
            f"Once upon a time, there was {h.intro}. {h.He} lived in a little house with {self.mom}.",
        )

    def moral(self, key: str) -> str:
        h = self.hero
        lesson = MORALS[key]
        return self.pick(
            f"{h.name} learned that {lesson}.",
            f"From that day on, {h.name} knew that {lesson}.",
            f"That day, {h.name} learned an important lesson: {lesson}.",
        )


# Each plot turns a Scene into paragraphs: a beginning, a problem, a resolution.


def lost_toy(s: Scene) -> list[str]:
    h, f, t = s.hero, s.friend, s.toy
    spot = s.pick(*LOST_SPOTS)
    return [
        s.opening(at_place=True),
        f"{h.He} played with {t.the} all morning. Then {h.he} ran to see a butterfly. "
        f"When {h.he} came back, {t.the} was gone!",
        f"{h.name} looked everywhere. {h.He} felt very sad. \"Where is my {t.noun}?\" {h.he} cried.",
        f"{_cap(f.intro)} came by. \"I will help you look,\" said {f.name}. "
        f"They looked and looked. At last, {f.name} saw the {t.noun} {spot}.",
        f"\"Here it is!\" said {f.name}. {h.name} was so happy. \"Thank you, {f.name}!\" {h.he} said. "
        f"{s.moral('careful')}",
    ]


def sharing(s: Scene) -> list[str]:
    h, f, t = s.hero, s.friend, s.toy
    return [
        s.opening(),
        f"One day, {h.his} friend {f.name} came to play. {f.name} saw {t.the} and said, "
        f"\"Can I play with your {t.noun}, please?\"",
        f"\"No! It is mine!\" said {h.name}. {h.He} held the {t.noun} very tight. {f.name} was sad "
        f"and sat down alone.",
        f"{h.name} looked at {f.name}. {h.He} did not feel happy anymore. {h.He} walked to {f.name} "
        f"and said, \"I am sorry. We can play with my {t.noun} together.\"",
        f"{f.name} smiled a big smile. They played all day and had so much fun. {s.moral('share')}",
    ]


def night_noise(s: Scene) -> list[str]:
    h = s.hero
    noise, culprit, why = s.rng.choice(NIGHT_NOISES)
    return [
        f"It was night and {h.name} was in bed. The room was very dark. {h.name} hugged "
        f"{h.his} {s.toy.noun} and closed {h.his} eyes.",
        f"Then {h.he} heard {noise}. {h.name} was scared. \"{s.Mom}! {s.Mom}!\" {h.he} called.",
        f"{_cap(s.mom)} came in and turned on the light. \"What is wrong?\" {s.gu_he} asked. "
        f"\"I heard a noise,\" said {h.name}.",
        f"They looked together. It was only {culprit}! {why} {h.name} laughed.",
        f"\"See? There is nothing to be scared of,\" said {s.mom}. {_cap(s.gu_he)} gave {h.him} a kiss. "
        f"{h.name} felt safe and warm, and soon {h.he} was fast asleep.",
    ]


def new_friend(s: Scene) -> list[str]:
    h, f = s.hero, s.friend
    return [
        s.opening(at_place=True),
        f"{_cap(s.at_place)}, {h.he} saw {_a(f.kind)} sitting all alone. The {f.kind} looked shy "
        f"and a little sad.",
        f"{h.name} wanted to say hello, but {h.he} was shy too. Then {h.he} took a deep breath and "
        f"walked over. \"Hi! My name is {h.name}. What is your name?\"",
        f"\"I am {f.name},\" said the {f.kind}. \"I am new here and I do not have any friends.\" "
        f"\"You can be my friend!\" said {h.name}.",
        f"They played {s.pick('tag', 'hide and seek', 'with the ball', 'in the sand')} and laughed "
        f"all afternoon. From that day on, {h.name} and {f.name} were best friends.",
    ]


def hurt_bird(s: Scene) -> list[str]:
    h = s.hero
    animal = s.pick("bird", "duck", "bunny", "squirrel")
    return [
        s.opening(at_place=True),
        f"{_cap(s.at_place)}, {h.he} found a little {animal} on the ground. It could not move its "
        f"{'leg' if animal in ('bunny', 'squirrel') else 'wing'}. The {animal} looked scared.",
        f"\"Poor little {animal},\" said {h.name}. {h.He} picked it up very gently and ran home to "
        f"{s.mom}. \"{s.Mom}, the {animal} is hurt! Can we help it?\"",
        f"{_cap(s.mom)} made a soft bed in a box. Every day, {h.name} gave the {animal} water and "
        f"{s.pick(*SNACKS)}. {h.He} talked to it and kept it warm.",
        f"After many days, the {animal} was strong again. {h.name} took it outside and let it go. "
        f"The {animal} looked back as if to say thank you. {h.name} felt proud and happy. "
        f"{s.moral('kind')}",
    ]


def broken_toy(s: Scene) -> list[str]:
    h, t = s.hero, s.toy
    return [
        s.opening(),
        f"One day, {h.he} was playing with {t.the} on the stairs. Oops! The {t.noun} fell down "
        f"and broke into two pieces.",
        f"{h.name} started to cry. \"My {t.noun} is broken! Now I cannot play with it anymore.\"",
        f"{_cap(s.mom)} came and looked at the pieces. \"Do not cry,\" {s.gu_he} said. \"Maybe we can "
        f"fix it.\" {_cap(s.gu_he)} got some {s.pick('glue', 'tape', 'string')} and they worked "
        f"together.",
        f"Soon the {t.noun} was as good as new. {h.name} gave {s.mom} a big hug. \"Thank you!\" "
        f"{h.he} said. From then on, {h.he} played with {h.his} {t.noun} in a safe place.",
    ]


def rainy_day(s: Scene) -> list[str]:
    h = s.hero
    bad, end = s.rng.choice(WEATHER)
    return [
        s.opening(),
        f"{h.name} and {s.mom} wanted to have a picnic {s.at_place}. They packed "
        f"{_a(s.food)} and some juice. But then {bad}.",
        f"\"Oh no,\" said {h.name}. \"Now we cannot have our picnic.\" {h.He} felt sad and looked "
        f"out of the window.",
        f"{_cap(s.mom)} had an idea. \"Let's have a picnic inside!\" {s.gu_he} said. They put a big "
        f"blanket on the floor and built a fort with chairs and pillows.",
        f"They ate the {s.food} in the fort and told funny stories. {end} \"This was the best "
        f"picnic ever,\" said {h.name}.",
    ]


def learn_skill(s: Scene) -> list[str]:
    h = s.hero
    skill, failure, success = s.rng.choice(SKILLS)
    success = success.replace("herself", h.herself)
    return [
        s.opening(),
        f"{h.name} wanted to learn to {skill}. {h.His} friend {s.friend.name} could already do it. "
        f"{h.name} tried, but {h.he} {failure}. {h.He} tried again, and the same thing happened.",
        f"\"I can't do it!\" {h.he} said. {h.He} was {s.pick('sad', 'angry', 'tired')} and wanted to "
        f"stop.",
        f"{_cap(s.mom)} sat next to {h.him}. \"Everyone falls when they learn,\" {s.gu_he} said. "
        f"\"Try one more time. I believe in you.\"",
        f"{h.name} took a deep breath and tried again. This time, {h.he} {success}! "
        f"\"I did it!\" {h.he} shouted. {h.He} was very proud. {s.moral('try')}",
    ]


def lost_way(s: Scene) -> list[str]:
    h, f = s.hero, s.friend
    chased = s.pick("a pretty butterfly", "a little rabbit", "a red leaf in the wind", "a yellow bird")
    return [
        s.opening(at_place=True),
        f"{_cap(s.at_place)}, {h.name} saw {chased}. {h.He} followed it, further and further. When {h.he} "
        f"stopped, {h.he} did not know where {h.he} was.",
        f"All the trees looked the same. {h.name} was scared. \"I want to go home,\" {h.he} said, "
        f"and a tear rolled down {h.his} cheek.",
        f"Then {f.intro} came by. \"Why are you sad?\" asked "
        f"{f.name}. \"I am lost,\" said {h.name}. \"I know the way,\" said {f.name}. \"Follow me!\"",
        f"{f.name} walked with {h.him} all the way home. {_cap(s.mom)} was waiting at the door and "
        f"gave {h.him} a big hug. {h.name} said, \"I will not go so far alone again.\"",
    ]


def race(s: Scene) -> list[str]:
    h, f = s.hero, s.friend
    goal = s.pick("the big tree", "the old fence", "the red gate", "the top of the hill")
    return [
        s.opening(at_place=True),
        f"{h.His} friend {f.name} was there too. \"Let's have a race to {goal}!\" said {f.name}. "
        f"\"Ready, set, go!\"",
        f"They ran as fast as they could. {h.name} was winning! But then {h.he} heard a cry. "
        f"{f.name} had fallen down and hurt {f.his} knee.",
        f"{h.name} stopped running. {h.He} went back and helped {f.name} stand up. \"Are you okay?\" "
        f"{h.he} asked. \"It hurts a little,\" said {f.name}.",
        f"They walked to {goal} together, side by side. Nobody won the race, but they were both "
        f"happy. {s.moral('help')}",
    ]


def gift(s: Scene) -> list[str]:
    h = s.hero
    present = s.pick(f"a picture of {h.his} family", "a card with a big heart on it",
                     f"a bunch of {s.pick(*FLOWERS)} flowers", "a necklace made of shells")
    return [
        s.opening(),
        f"Tomorrow was {s.mom}'s birthday. {h.name} wanted to give {s.gu_him} "
        f"a present, but {h.he} had no money.",
        f"\"What can I give?\" {h.he} asked {h.his} friend {s.friend.name}. \"You can make something,\" "
        f"said {s.friend.name}. \"A present from your heart is the best.\"",
        f"So {h.name} worked hard all day. {h.He} made {present}. {h.He} hid it under {h.his} bed "
        f"so it would be a surprise.",
        f"The next day, {h.name} gave the present to {s.mom}. \"Happy birthday!\" {h.he} said. "
        f"{_cap(s.mom)} smiled and hugged {h.him}. \"This is the best present ever,\" {s.gu_he} said.",
    ]


def bake_cake(s: Scene) -> list[str]:
    h = s.hero
    cake = s.pick("chocolate cake", "cake with berries", "big yellow cake", "batch of cookies")
    return [
        s.opening(),
        f"One day, {h.name} and {s.mom} decided to bake {_a(cake)}. {h.name} put on a little apron. "
        f"{h.He} was very excited.",
        f"{h.name} wanted to help, so {h.he} picked up the bag of flour. But it was too heavy! "
        f"Whoosh! Flour went everywhere. It was on the floor, on the table, and on {h.his} nose.",
        f"{h.name} thought {s.mom} would be angry. \"I am sorry,\" {h.he} said. But {s.mom} just "
        f"laughed. \"You look like a snowman!\" {s.gu_he} said. They cleaned up together.",
        f"Then they mixed the eggs, the milk and the sugar, and put the {cake} in the oven. It smelled "
        f"so good. {h.name} shared it with {h.his} friend {s.friend.name}, and everyone said it was "
        f"yummy.",
    ]


def plant_seed(s: Scene) -> list[str]:
    h = s.hero
    plant, grown = s.rng.choice((("flower", f"there was a big {s.pick(*FLOWERS)} flower"),
                                 ("tomato", "there were red tomatoes"),
                                 ("sunflower", "there was a sunflower taller than the fence"),
                                 ("carrot", "there were orange carrots")))
    return [
        s.opening(),
        f"One day, {s.mom} gave {h.name} a tiny seed. \"If you plant it and take care of it, a "
        f"{plant} will grow,\" {s.gu_he} said.",
        f"{h.name} dug a hole in the garden and put the seed in. {h.He} gave it water. The next "
        f"morning, {h.he} ran outside to look. But there was nothing there!",
        f"\"Why is it not growing?\" {h.name} asked. {h.He} was sad. \"Seeds need time,\" said "
        f"{s.mom}. \"You have to be patient.\" So every day, {h.name} gave the seed water and sun.",
        f"Then one morning, {h.name} saw a little green leaf. It grew and grew, and soon "
        f"{grown}. {h.name} jumped up and down. {s.moral('patient')}",
    ]


def kite_stuck(s: Scene) -> list[str]:
    h, f = s.hero, s.friend
    helper = s.pick(f"{s.mom} with a long stick", "a tall giraffe from the zoo", "a kind man with a ladder",
                    f"{f.name}, who climbed on a big box")
    return [
        f"It was a windy day. {h.name} took {h.his} {s.pick('red', 'blue', 'yellow', 'green')} kite to "
        f"{s.place}. The kite flew high up in the sky. {h.name} laughed and ran.",
        "Then a big wind came. The kite went down, down, down, and got stuck in a tall tree!",
        f"{h.name} jumped, but {h.he} could not reach it. \"My kite!\" {h.he} said. {h.He} felt like "
        f"crying.",
        f"Then help came: {helper}. Very carefully, the kite came down from the tree. It was not "
        f"broken at all.",
        f"\"Thank you so much!\" said {h.name}. Soon the kite was flying high again, and {h.name} "
        f"stayed far away from the trees.",
    ]


def sandcastle(s: Scene) -> list[str]:
    h, f = s.hero, s.friend
    return [
        f"One sunny day, {h.name} went to the beach with {s.mom}. The sand was warm and the water "
        f"was blue. {h.name} wanted to build the biggest sandcastle in the world.",
        f"{h.He} dug and patted the sand for a long time. {h.His} castle had four towers and a "
        f"little flag. Then a big wave came. Splash! The castle was gone.",
        f"{h.name} sat down and felt very sad. \"All my work is gone,\" {h.he} said. {_cap(f.intro)} "
        f"came over. \"Don't be sad. Let's build a new one together,\" said {f.name}.",
        f"This time they built the castle far away from the water. It was even bigger than before, "
        f"with shells on the walls. \"Working together is more fun,\" said {h.name}, and {f.name} agreed.",
    ]


def without_asking(s: Scene) -> list[str]:
    h = s.hero
    food = s.food
    return [
        s.opening(),
        f"One day, {h.name} saw {_a(food)} on the kitchen table. It looked so yummy. {s.Mom} had said "
        f"it was for after dinner. But {h.name} took it and ate it all.",
        f"Later, {s.mom} looked at the table. \"Where is the {food}?\" {s.gu_he} asked. {h.name} felt "
        f"a funny feeling in {h.his} tummy. {h.He} wanted to say, \"I don't know.\"",
        f"But {h.name} knew that was not true. {h.He} looked down and said, \"I ate it, {s.Mom}. I am "
        f"sorry. I did not ask.\"",
        f"{_cap(s.mom)} gave {h.him} a hug. \"Thank you for telling me the truth,\" {s.gu_he} said. "
        f"\"Next time, please ask first.\" {h.name} nodded and felt much better. {s.moral('truth')}",
    ]


def big_kid(s: Scene) -> list[str]:
    h, t = s.hero, s.toy
    bully, bully_him = s.rng.choice((("big boy", "him"), ("big girl", "her"), ("tall boy", "him"),
                                     ("grumpy goat", "him")))
    return [
        s.opening(),
        f"A {bully} came and took {t.the} away. \"This is mine now,\" said the {bully}. \"You are too "
        f"small to play with it.\"",
        f"{h.name} was sad and a little scared. But {h.he} stood up tall and said, \"That is my "
        f"{t.noun}. Please give it back. We can play with it together if you want.\"",
        f"The {bully} was surprised. Nobody had asked {bully_him} to play before. "
        f"\"Really? You would play with me?\" \"Yes,\" said {h.name}.",
        f"The {bully} gave back the {t.noun} and said sorry. They played together until the sun went "
        f"down. {s.moral('kind')}",
    ]


def clean_room(s: Scene) -> list[str]:
    h, t = s.hero, s.toy
    spot = s.pick(*HOME_SPOTS)
    return [
        s.opening(),
        f"But {h.name}'s room was very messy. There were toys and clothes and books all over the floor.",
        f"One day, {h.name} wanted to play with {h.his} {t.noun}, but {h.he} could not find it. "
        f"\"{s.Mom}, where is my {t.noun}?\" {h.he} asked.",
        f"\"I think it is somewhere in your room,\" said {s.mom}. \"If you clean up, you will find it.\" "
        f"{h.name} did not want to clean. But {h.he} wanted {h.his} {t.noun}. So {h.he} put the books "
        f"on the shelf and the clothes in the basket.",
        f"Then {h.he} looked {spot}, and there was the {t.noun}! {h.name} smiled. {h.His} room looked "
        f"nice and clean. \"I will keep my room tidy,\" {h.he} said.",
    ]


def magic_stone(s: Scene) -> list[str]:
    h, f = s.hero, s.friend
    thing = s.pick("shiny stone", "little gold key", "sparkly shell", "tiny blue bell")
    wish = s.pick("a new toy for my friend", f"a smile for {f.name}", "sunshine for everyone",
                  "a big cake to share")
    return [
        s.opening(at_place=True),
        f"{_cap(s.at_place)}, {h.he} found {_a(thing)}. When {h.he} picked it up, it said, \"Hello! I am a "
        f"magic {thing.split()[-1]}. I can give you one wish.\"",
        f"{h.name} was so surprised! {h.He} thought and thought. {h.He} could wish for toys or candy. "
        f"But then {h.he} remembered that {h.his} friend {f.name} was sad that day.",
        f"\"I wish for {wish},\" said {h.name}. The {thing.split()[-1]} began to glow, and the wish "
        f"came true.",
        f"{f.name} was so happy. The magic {thing.split()[-1]} said, \"You have a kind heart.\" "
        f"{h.name} put it in {h.his} pocket and went home with a big smile. {s.moral('kind')}",
    ]


def hungry_puppy(s: Scene) -> list[str]:
    h = s.hero
    pet = s.pick("puppy", "kitten", "duck")
    name = s.pick(*(n for n in PET_NAMES if n not in (h.name, s.friend.name)))
    return [
        s.opening(at_place=True),
        f"{_cap(s.at_place)}, {h.name} saw a little {pet}. It was thin and dirty, and it looked hungry.",
        f"{h.name} had {_a(s.food)} in {h.his} bag. {h.He} wanted to eat it, but the {pet} looked so "
        f"sad. {h.He} gave half to the {pet}. The {pet} ate it all up and looked very happy.",
        f"When {h.name} walked home, the {pet} followed {h.him}. \"{s.Mom}, can we keep it?\" "
        f"{h.he} asked. {_cap(s.mom)} looked at the {pet}. \"It has no home,\" {s.gu_he} said. "
        f"\"Yes, we can keep it.\"",
        f"{h.name} gave the {pet} a bath and called it {name}. From that day on, {name} and {h.name} "
        f"did everything together.",
    ]


def sick_friend(s: Scene) -> list[str]:
    h, f = s.hero, s.friend
    brought = s.pick(f"some {s.pick(*FLOWERS)} flowers", "a warm bowl of soup", f"{h.his} favorite book",
                     f"{h.his} {s.toy.noun}")
    return [
        s.opening(),
        f"One day, {h.name} went to play with {f.name}, but {f.name} was sick in bed. {f.He} had a "
        f"cold and could not go outside.",
        f"{h.name} felt sad for {f.him} friend. \"What can I do to help?\" "
        f"{h.he} asked {s.mom}. \"Maybe you can cheer {f.name} up,\" said {s.mom}.",
        f"So {h.name} brought {brought} to {f.name}. {h.He} sat by the bed and told {f.name} a funny "
        f"story about a dancing frog.",
        f"{f.name} laughed and laughed. \"Thank you, {h.name}. I feel better already,\" {f.he} said. "
        f"A few days later, {f.name} was well, and they played outside together. {s.moral('help')}",
    ]


def doctor_visit(s: Scene) -> list[str]:
    h = s.hero
    return [
        s.opening(),
        f"One day, {h.name} had to go to the doctor. {h.He} was scared. \"Will it hurt?\" {h.he} "
        f"asked {s.mom}. \"Maybe a little,\" said {s.mom}, \"but it will be quick.\"",
        f"At the doctor, {h.name} held {h.his} {s.toy.noun} very tight. The doctor was a kind woman "
        f"with a big smile. \"Hello, {h.name},\" she said. \"You are very brave to come here.\"",
        f"The doctor listened to {h.his} heart and looked in {h.his} ears. Then it was time for the "
        f"shot. {h.name} closed {h.his} eyes. Poke! It was over so fast.",
        f"\"You did it!\" said the doctor, and she gave {h.name} a shiny sticker. {h.name} felt proud. "
        f"{s.moral('brave')}",
    ]


def cat_in_tree(s: Scene) -> list[str]:
    h = s.hero
    return [
        s.opening(at_place=True),
        f"{_cap(s.at_place)}, {h.name} heard a little \"Meow, meow.\" {h.He} looked up. A small kitten was "
        f"stuck high in a tree. It was too scared to come down.",
        f"\"Don't worry, little kitten!\" said {h.name}. {h.He} was too small to climb so high. So "
        f"{h.he} ran to get {s.mom}. \"{s.Mom}, come quick! A kitten is stuck!\"",
        f"{_cap(s.mom)} brought a ladder. {_cap(s.gu_he)} climbed up slowly and picked up the kitten. "
        f"The kitten held on tight.",
        f"When they were down, the kitten purred and licked {h.name}'s hand. {h.name} laughed. "
        f"\"You are safe now,\" {h.he} said. {s.moral('help')}",
    ]


def dropped_ice_cream(s: Scene) -> list[str]:
    h, f = s.hero, s.friend
    flavor = s.pick("pink", "chocolate", "strawberry", "vanilla", "mint")
    return [
        s.opening(),
        f"It was a hot day. {h.name} and {f.name} each got {_a(flavor)} ice cream. {h.name} was so "
        f"happy that {h.he} jumped up and down. Oh no! {h.His} ice cream fell on the ground.",
        f"{h.name} looked at the ice cream on the ground. {h.His} eyes filled with tears. \"Now I have "
        f"no ice cream,\" {h.he} said.",
        f"{f.name} looked at {f.his} own ice cream. Then {f.he} said, \"Here, we can share mine. You "
        f"take a lick, then I take a lick.\"",
        f"{h.name} smiled. They shared the ice cream until it was all gone. \"You are a good friend,\" "
        f"said {h.name}. The next day, {h.name} shared {h.his} {s.food} with {f.name}. {s.moral('share')}",
    ]


def quiet_drum(s: Scene) -> list[str]:
    h = s.hero
    return [
        s.opening(),
        f"{h.name} got a new drum. Boom, boom, boom! {h.He} loved to play it as loud as {h.he} could.",
        f"But {h.his} baby {s.pick('sister', 'brother')} was sleeping. The baby woke up and started "
        f"to cry. {_cap(s.mom)} came in. \"Please be quiet, the baby needs to sleep,\" {s.gu_he} said.",
        f"At first, {h.name} was angry. \"But I want to play my drum!\" {h.he} said. Then {h.he} "
        f"looked at the baby. The baby was tired and sad. {h.name} put the drum down.",
        f"{h.He} sang a soft song until the baby fell asleep. Later, {h.he} took the drum outside and "
        f"played it loud in the garden, where nobody was sleeping. Everyone was happy.",
    ]


def snowman(s: Scene) -> list[str]:
    h, f = s.hero, s.friend
    thing = s.pick("hat", "scarf")
    return [
        f"One winter morning, {h.name} looked out of the window. Everything was white! \"Snow!\" "
        f"{h.he} shouted. {h.He} put on {h.his} warm coat and ran outside with {h.his} friend {f.name}.",
        f"They rolled a big ball of snow, then a smaller one, then a tiny one for the head. They gave "
        f"the snowman a carrot nose and a red {thing}.",
        f"Then the wind blew and the red {thing} flew away! \"Come back!\" cried {h.name}. They ran "
        f"after it across the yard and down the hill.",
        f"At last {f.name} caught it. They put it back on the snowman and laughed. Then they went "
        f"inside and drank warm milk. \"This is the best snow day,\" said {h.name}.",
    ]


def first_day(s: Scene) -> list[str]:
    h, f = s.hero, s.friend
    return [
        s.opening(),
        f"Today was {h.name}'s first day at school. {h.He} held {s.mom}'s hand and did not want to "
        f"let go. \"What if nobody likes me?\" {h.he} asked.",
        f"\"You will make friends,\" said {s.mom}. \"Just be yourself.\" The teacher smiled and showed "
        f"{h.name} where to sit. Next to {h.him} was {_a(f.kind)} named {f.name}.",
        f"\"Do you want to paint with me?\" asked {f.name}. \"Yes!\" said {h.name}. They painted a big "
        f"sun and a {s.pick('green', 'purple', 'blue')} house, and they laughed a lot.",
        f"When {s.mom} came back, {h.name} ran to {s.gu_him}. \"School is fun! "
        f"I have a new friend!\" {h.he} said. {h.He} could not wait to go back tomorrow.",
    ]


def borrowed_toy(s: Scene) -> list[str]:
    h, f, t = s.hero, s.friend, s.toy
    return [
        s.opening(),
        f"One day, {h.name} went to {f.name}'s house. {f.name} had {t.a}. {h.name} liked it very much. "
        f"When {f.name} was not looking, {h.name} put the {t.noun} in {h.his} bag.",
        f"At home, {h.name} took out the {t.noun}, but it did not feel fun to play with. {h.He} kept "
        f"thinking about {f.name}. \"{f.name} will be sad,\" {h.he} thought.",
        f"So {h.name} went back to {f.name}'s house. \"I took your {t.noun} without asking,\" {h.he} "
        f"said. \"I am sorry. Here it is.\"",
        f"{f.name} was quiet for a moment. Then {f.he} smiled. \"Thank you for bringing it back. "
        f"Next time, just ask, and we can play with it together.\" {s.moral('ask')}",
    ]


PLOTS: dict[str, Callable[[Scene], list[str]]] = {
    plot.__name__: plot
    for plot in (lost_toy, sharing, night_noise, new_friend, hurt_bird, broken_toy, rainy_day,
                 learn_skill, lost_way, race, gift, bake_cake, plant_seed, kite_stuck, sandcastle,
                 without_asking, big_kid, clean_room, magic_stone, hungry_puppy, sick_friend,
                 doctor_visit, cat_in_tree, dropped_ice_cream, quiet_drum, snowman, first_day,
                 borrowed_toy)
}
