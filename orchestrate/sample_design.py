"""The fixed design of the synthetic sample: districts, coding schemes, item bank, wordings.

Plain data, independent of scale and seed, so that the committed seeds
(seeds/survey/*.csv), the generator (orchestrate/generate.py) and the tests all refer to
the same thing. Scale only changes how many schools, students and answers there are;
seed only changes the random draws. Wordings are fixed per district, so the question
crosswalk keyed on (district_id, question text) holds at every scale and seed.

Regenerate the seed files after editing this module:

    python -m orchestrate.sample_design seeds/survey

Truth conventions (what the warehouse's normalization is compared against):
- A code that nobody could map (UNMAPPABLE_CODES) and a null both mean Unknown / null.
- english_learner is true only for current English learners ("EL", "LEP", "LY", ...);
  reclassified and monitored former learners ("RFEP", "Monitored", "LF") are false.
- econ_disadvantaged is true for Free or Reduced lunch, false for Paid / Full price /
  Not eligible.
- Federal 7-category roll-up follows the 1997 standards, where Middle Eastern or North
  African counts as White; the 2024 roll-up keeps MENA and counts Hispanic or Latino as
  one of the categories.
"""

from __future__ import annotations

import csv
import re
import sys
import zlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Callable

# --------------------------------------------------------------------------------------
# Vocabularies (the warehouse's normalized values)

GRADES = ("PK", "KG", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "UG")
GRADE_NUMBER = {g: i - 1 for i, g in enumerate(GRADES[:-1])}  # PK=-1, KG=0, 01=1 ... 12=12
GENDERS = ("F", "M", "X")
RACES = ("AIAN", "Asian", "Black", "NHPI", "White", "MENA")
LUNCH = ("Free", "Reduced", "Paid")  # econ_disadvantaged = Free or Reduced

RACE_LABELS = {
    "AIAN": "American Indian or Alaska Native",
    "Asian": "Asian",
    "Black": "Black or African American",
    "NHPI": "Native Hawaiian or Other Pacific Islander",
    "White": "White",
    "MENA": "Middle Eastern or North African",
}
HISPANIC_LABEL = "Hispanic or Latino"
TWO_OR_MORE = "Two or more races"
MULTI_2024 = "Multiracial and/or Multiethnic"
UNKNOWN = "Unknown"

SCHOOL_YEARS = ("2022-23", "2023-24", "2024-25")
RESPONDENT_TYPES = ("student", "staff", "family")


def fall_year(school_year: str) -> int:
    return int(school_year[:4])


# --------------------------------------------------------------------------------------
# Item bank


@dataclass(frozen=True)
class Topic:
    topic_id: str
    topic_name: str
    respondent_type: str
    description: str
    scale: str  # key of SCALES; every item of the topic uses it


@dataclass(frozen=True)
class Item:
    canonical_item_id: str
    topic_id: str
    canonical_text: str
    reverse_coded: bool
    rephrased: str  # a different wording with the same meaning
    reordered: str | None  # the same words in another order (None: no natural reordering)


SCALES: dict[str, tuple[str, ...]] = {
    "agree5": ("Strongly disagree", "Disagree", "Neither agree nor disagree", "Agree", "Strongly agree"),
    "often5": ("Never", "Rarely", "Sometimes", "Often", "Always"),
    "agree7": (
        "Strongly disagree",
        "Disagree",
        "Somewhat disagree",
        "Neither agree nor disagree",
        "Somewhat agree",
        "Agree",
        "Strongly agree",
    ),
}


def favorable_threshold(scale_points: int) -> int:
    """Lowest scored value counted favorable: top two of 5, top three of 7."""
    return scale_points - 1 if scale_points == 5 else scale_points - 2


TOPICS: tuple[Topic, ...] = (
    Topic("stu_belonging", "Sense of belonging", "student",
          "Whether students feel accepted, included and connected to their school.", "agree5"),
    Topic("stu_safety", "School safety", "student",
          "Whether students feel physically safe at and on the way to school, including bullying.", "agree5"),
    Topic("stu_relationships", "Teacher-student relationships", "student",
          "Whether students feel their teachers care about them, respect them and help them.", "agree7"),
    Topic("stu_engagement", "Classroom engagement", "student",
          "How often students are interested, try hard and take part in class.", "often5"),
    Topic("stu_expectations", "Academic expectations", "student",
          "Whether students find their classes challenging and their teachers demanding.", "agree5"),
    Topic("stu_wellbeing", "Emotional well-being", "student",
          "How often in the past month students felt well, worried or sad, and could cope.", "often5"),
    Topic("stf_leadership", "School leadership", "staff",
          "Whether staff find school leaders clear, supportive and trustworthy.", "agree7"),
    Topic("stf_collaboration", "Professional collaboration", "staff",
          "How often staff plan, share and learn with colleagues.", "often5"),
    Topic("stf_conditions", "Working conditions", "staff",
          "Whether staff have the time, resources and manageable workload to do their jobs.", "agree5"),
    Topic("fam_communication", "School-family communication", "family",
          "Whether families are kept informed in a way they understand.", "agree5"),
    Topic("fam_welcome", "Family welcome", "family",
          "Whether families feel welcome and respected at their child's school.", "agree7"),
)
TOPIC_BY_ID = {t.topic_id: t for t in TOPICS}

ITEMS: tuple[Item, ...] = (
    # stu_belonging (agree5)
    Item("bel_01", "stu_belonging", "I feel like I belong at this school.", False,
         "This school feels like a place where I belong.", "At this school, I feel like I belong."),
    Item("bel_02", "stu_belonging", "I often feel left out at school.", True,
         "There are many times I feel excluded by others at school.", "At school, I often feel left out."),
    Item("bel_03", "stu_belonging", "Other students at this school accept me for who I am.", False,
         "Kids here accept me the way I am.", "Other students accept me for who I am at this school."),
    Item("bel_04", "stu_belonging", "There is an adult at school I can talk to when I have a problem.", False,
         "If something is wrong, I have a grown-up at school I can go to.",
         "When I have a problem, there is an adult at school I can talk to."),
    Item("bel_05", "stu_belonging", "I am proud to be a student at this school.", False,
         "Being a student here makes me proud.", "At this school, I am proud to be a student."),
    # stu_safety (agree5)
    Item("saf_01", "stu_safety", "I feel safe at school.", False,
         "School is a safe place for me.", "At school, I feel safe."),
    Item("saf_02", "stu_safety", "I feel safe on my way to and from school.", False,
         "Getting to and from school feels safe to me.", "On my way to and from school, I feel safe."),
    Item("saf_03", "stu_safety", "Students at this school are often bullied.", True,
         "Bullying happens a lot here.", "At this school, students are often bullied."),
    Item("saf_04", "stu_safety", "Adults at this school stop bullying when they see it.", False,
         "When staff notice bullying, they put an end to it.",
         "When they see it, adults at this school stop bullying."),
    Item("saf_05", "stu_safety", "I worry about fights or violence at school.", True,
         "Fights and violence at school are something that scares me.",
         "At school, I worry about fights or violence."),
    # stu_relationships (agree7)
    Item("rel_01", "stu_relationships", "My teachers care about me as a person.", False,
         "The teachers here genuinely care about me.", "As a person, my teachers care about me."),
    Item("rel_02", "stu_relationships", "My teachers believe I can do well in school.", False,
         "Teachers here think I am capable of succeeding.", "In school, my teachers believe I can do well."),
    Item("rel_03", "stu_relationships", "I can ask my teachers for help when I need it.", False,
         "When I'm stuck, I feel comfortable asking a teacher to help.",
         "When I need it, I can ask my teachers for help."),
    Item("rel_04", "stu_relationships", "My teachers listen to what students have to say.", False,
         "Teachers here pay attention to student opinions.", None),
    Item("rel_05", "stu_relationships", "Teachers at this school do not respect students.", True,
         "Students don't get respect from the teachers here.", "At this school, teachers do not respect students."),
    # stu_engagement (often5)
    Item("eng_01", "stu_engagement", "I am interested in what I am learning in class.", False,
         "Class topics hold my interest.", "In class, I am interested in what I am learning."),
    Item("eng_02", "stu_engagement", "I try my best on schoolwork, even when it is hard.", False,
         "Even with difficult assignments, I give it my full effort.",
         "Even when it is hard, I try my best on schoolwork."),
    Item("eng_03", "stu_engagement", "I get bored in class.", True,
         "Lessons feel dull to me.", "In class, I get bored."),
    Item("eng_04", "stu_engagement", "I take part in class discussions.", False,
         "I join in when the class is talking something over.", "In class discussions, I take part."),
    Item("eng_05", "stu_engagement", "I look forward to coming to school.", False,
         "I'm glad when it's time to go to school.", None),
    # stu_expectations (agree5)
    Item("exp_01", "stu_expectations", "My teachers expect me to do my best work.", False,
         "Teachers here hold me to high standards.", None),
    Item("exp_02", "stu_expectations", "My classes make me think hard.", False,
         "The work in my classes is challenging.", None),
    Item("exp_03", "stu_expectations", "The work in my classes is too easy for me.", True,
         "My classwork doesn't challenge me.", "For me, the work in my classes is too easy."),
    Item("exp_04", "stu_expectations", "I am asked to explain my thinking in class.", False,
         "Teachers ask me to show how I got my answers.", "In class, I am asked to explain my thinking."),
    # stu_wellbeing (often5)
    Item("wel_01", "stu_wellbeing", "During the past month, I felt happy.", False,
         "Lately I have been in a good mood.", "I felt happy during the past month."),
    Item("wel_02", "stu_wellbeing", "During the past month, I felt worried or nervous.", True,
         "Recently I've been anxious or on edge.", "I felt worried or nervous during the past month."),
    Item("wel_03", "stu_wellbeing", "During the past month, I felt so sad it was hard to do my schoolwork.", True,
         "Lately sadness has gotten in the way of my schoolwork.",
         "I felt so sad it was hard to do my schoolwork during the past month."),
    Item("wel_04", "stu_wellbeing", "I know how to calm myself down when I am upset.", False,
         "When I get upset, I have ways to settle down.", "When I am upset, I know how to calm myself down."),
    Item("wel_05", "stu_wellbeing", "I have someone I can talk to about my feelings.", False,
         "There is a person I can share my emotions with.", None),
    # stf_leadership (agree7)
    Item("lea_01", "stf_leadership", "School leaders communicate a clear vision for this school.", False,
         "Our administrators have set a clear direction for where the school is going.",
         "For this school, school leaders communicate a clear vision."),
    Item("lea_02", "stf_leadership", "School leaders give me useful feedback on my teaching.", False,
         "I get helpful comments about my instruction from administrators.",
         "On my teaching, school leaders give me useful feedback."),
    Item("lea_03", "stf_leadership", "School leaders make decisions without asking staff for input.", True,
         "Administration rarely consults staff before deciding.",
         "Without asking staff for input, school leaders make decisions."),
    Item("lea_04", "stf_leadership", "I trust the school leadership team.", False,
         "I have confidence in our administrators.", None),
    Item("lea_05", "stf_leadership", "School leaders support me in handling student behavior.", False,
         "When discipline problems come up, administration backs me up.",
         "In handling student behavior, school leaders support me."),
    # stf_collaboration (often5)
    Item("col_01", "stf_collaboration", "I plan lessons together with other teachers.", False,
         "Colleagues and I work jointly on lesson planning.", "Together with other teachers, I plan lessons."),
    Item("col_02", "stf_collaboration", "Teachers at this school share ideas and materials with each other.", False,
         "Staff here freely exchange resources and ideas.",
         "With each other, teachers at this school share ideas and materials."),
    Item("col_03", "stf_collaboration", "I observe colleagues teach and discuss what I saw.", False,
         "I visit other classrooms and we talk about it afterward.", None),
    Item("col_04", "stf_collaboration", "I work alone without support from colleagues.", True,
         "I'm on my own, with little help from other staff.", "Without support from colleagues, I work alone."),
    # stf_conditions (agree5)
    Item("con_01", "stf_conditions", "I have enough time to prepare for my classes.", False,
         "My schedule leaves adequate prep time.", "To prepare for my classes, I have enough time."),
    Item("con_02", "stf_conditions", "My workload is reasonable.", False,
         "The amount of work I'm expected to do is manageable.", None),
    Item("con_03", "stf_conditions", "I feel burned out by my work.", True,
         "This job leaves me exhausted.", "By my work, I feel burned out."),
    Item("con_04", "stf_conditions", "I have the materials and resources I need to do my job.", False,
         "I am given the supplies and tools required for my work.",
         "To do my job, I have the materials and resources I need."),
    Item("con_05", "stf_conditions", "I plan to keep working at this school next year.", False,
         "I expect to return to this school in the fall.", "Next year, I plan to keep working at this school."),
    # fam_communication (agree5)
    Item("fco_01", "fam_communication", "The school keeps me informed about my child's progress.", False,
         "I hear regularly from the school about how my child is doing.",
         "About my child's progress, the school keeps me informed."),
    Item("fco_02", "fam_communication", "I know who to contact at school when I have a question.", False,
         "If something comes up, I know which staff member to reach.",
         "When I have a question, I know who to contact at school."),
    Item("fco_03", "fam_communication", "School communications are hard to understand.", True,
         "Messages from the school are confusing.", None),
    Item("fco_04", "fam_communication", "The school communicates with me in my preferred language.", False,
         "I get school information in the language I prefer.",
         "In my preferred language, the school communicates with me."),
    # fam_welcome (agree7)
    Item("fwe_01", "fam_welcome", "I feel welcome at my child's school.", False,
         "My child's school makes families feel at home.", "At my child's school, I feel welcome."),
    Item("fwe_02", "fam_welcome", "Staff at the school treat my family with respect.", False,
         "My family is treated respectfully by school employees.",
         "With respect, staff at the school treat my family."),
    Item("fwe_03", "fam_welcome", "The school values my input.", False,
         "The school takes my opinions seriously.", None),
    Item("fwe_04", "fam_welcome", "I feel unwelcome when I visit the school.", True,
         "Visiting the building makes me feel like an outsider.", "When I visit the school, I feel unwelcome."),
)
ITEM_BY_ID = {i.canonical_item_id: i for i in ITEMS}


def item_scale(item: Item) -> str:
    return TOPIC_BY_ID[item.topic_id].scale


def scale_points(item: Item) -> int:
    return len(SCALES[item_scale(item)])


NON_SUBSTANTIVE_OPTIONS: tuple[tuple[str, str], ...] = (
    ("I don't know", "dont_know"),
    ("Don't know", "dont_know"),
    ("Not sure", "dont_know"),
    ("Not applicable", "not_applicable"),
    ("N/A", "not_applicable"),
    ("Does not apply", "not_applicable"),
    ("Prefer not to answer", "declined"),
    ("Decline to answer", "declined"),
    ("Prefer not to say", "declined"),
)


@dataclass(frozen=True)
class ClientQuestion:
    """A question a client added with no canonical item: options None means open-ended."""

    key: str
    text: str
    options: tuple[str, ...] | None


CLIENT_QUESTIONS: dict[str, ClientQuestion] = {
    q.key: q
    for q in (
        ClientQuestion("stu_open_better", "What is one thing that would make your school better?", None),
        ClientQuestion("stu_open_proud", "Tell us about something you did this year that you are proud of.", None),
        ClientQuestion("stu_commute", "How do you usually get to school?",
                       ("Walk", "School bus", "Car", "Bike or scooter", "Public transit", "Other")),
        ClientQuestion("stu_breakfast", "Did you eat breakfast this morning?", ("Yes", "No")),
        ClientQuestion("stu_activities", "How many clubs, teams or activities are you part of?",
                       ("None", "One", "Two", "Three or more")),
        ClientQuestion("stf_open_support", "What support would help you most this year?", None),
        ClientQuestion("stf_tenure", "How many years have you worked at this school?",
                       ("Less than 1", "1 to 3", "4 to 10", "More than 10")),
        ClientQuestion("stf_role", "What is your main role?",
                       ("Classroom teacher", "Specialist", "Paraprofessional", "Administrator", "Other staff")),
        ClientQuestion("stf_pd", "How many hours of professional development did you attend this year?",
                       ("None", "1 to 5", "6 to 15", "More than 15")),
        ClientQuestion("fam_contact", "How would you like the school to contact you?",
                       ("Email", "Text message", "Phone call", "Paper note home")),
        ClientQuestion("fam_open_comments", "Is there anything else you would like the school to know?", None),
        ClientQuestion("fam_children", "How many of your children attend this school?",
                       ("One", "Two", "Three or more")),
    )
}

OPEN_TEXT_ANSWERS = (
    "More clubs after school", "longer lunch", "Nothing", "better food in the cafeteria",
    "more time outside", "idk", "Fix the bathrooms", "More field trips", "n/a",
    "Smaller classes", "Nicer teachers", "more sports", "Less homework!", "It's fine",
    "Better communication from the office", "more planning time", "Fewer meetings",
    "Thank you", "Stricter rules on phones", "more art and music",
)

# --------------------------------------------------------------------------------------
# Districts and their coding schemes
#
# codes[field][truth] = codes used for that true value; the first is the primary code
# (about 90% of students), the others share the rest. True values: grade_level in
# GRADES, gender in GENDERS or "Unknown", race in RACES, lunch_status in LUNCH, the
# flags True/False. A code may be a string or a JSON boolean.


def _grades(pk: str, kg: str, n: Callable[[int], str], ug: str | None = "UG") -> dict[str, list]:
    out: dict[str, list] = {"PK": [pk], "KG": [kg]}
    for g in range(1, 13):
        out[f"{g:02d}"] = [n(g)]
    if ug is not None:
        out["UG"] = [ug]
    return out


def _ordinal(g: int) -> str:
    return f"{g}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(g if g < 20 else g % 10, 'th')}"


@dataclass(frozen=True)
class Window:
    month: int
    day: int  # the survey opens on the first Monday on or after this date
    weeks: int

    def dates(self, school_year: str) -> tuple[date, date]:
        y = fall_year(school_year)
        start = date(y if self.month >= 8 else y + 1, self.month, self.day)
        opens = start + timedelta(days=(7 - start.weekday()) % 7)
        return opens, opens + timedelta(days=7 * self.weeks - 3)  # closes on a Friday


@dataclass(frozen=True)
class District:
    district_id: str
    name: str
    state: str
    nces_lea_id: str | None
    locale: str | None
    email_domain: str
    local_id_prefix: str
    local_id_digits: int
    student_weight: float
    base_frl: float  # share of students eligible for free or reduced lunch
    codes: dict[str, dict[object, list]]
    race_separators: tuple[str, ...]  # one picked per student; more than one = mixed
    fourth_school: str  # grades served by the fourth school (first three: PK-5, 6-8, 9-12)
    student_window: Window
    staff_window: Window
    family_window: Window | None  # None: no family survey
    anonymous_student_survey: bool = False
    answers_as_labels: str = "none"  # "none", "all", or "part" (about half the responses)
    non_substantive: tuple[tuple[int, str], ...] = ()  # extra options with off-scale values
    options_descending: bool = False  # options displayed from the top of the scale
    shuffled_positions: bool = False  # questions not in topic order on the form
    normalized_style: str = "lower"  # see normalized_variant()
    skipped_topics: tuple[str, ...] = ()
    client_questions: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def number(self) -> int:
        return int(self.district_id[1:])


YN = {True: ["Y"], False: ["N"]}
YES_NO = {True: ["Yes"], False: ["No"]}
ONE_ZERO = {True: ["1"], False: ["0"]}
JSON_BOOL = {True: [True], False: [False]}

DISTRICTS: tuple[District, ...] = (
    District(
        "d01", "Maple Valley Unified School District", "CA", "0612345", "City", "maplevalley.k12.ca.us",
        "", 6, 1.3, 0.58,
        codes={
            "grade_level": {**_grades("PK", "K", str), "PK": ["PK", "TK"]},  # TK: transitional kindergarten
            "gender": {"F": ["F"], "M": ["M"], "X": ["X"]},
            "race": {"AIAN": ["I"], "Asian": ["A"], "Black": ["B"], "NHPI": ["P"], "White": ["W"]},
            "hispanic_latino": YN,
            "english_learner": {True: ["EL"], False: ["EO", "RFEP", "IFEP"]},
            "iep": YN,
            "section_504": YN,
            "lunch_status": {"Free": ["F"], "Reduced": ["R"], "Paid": ["P"]},
        },
        race_separators=(",",), fourth_school="K-8",
        student_window=Window(10, 1, 3), staff_window=Window(10, 1, 3), family_window=None,
        normalized_style="lower", shuffled_positions=False,
        client_questions={"student": ("stu_open_better", "stu_commute"), "staff": ("stf_open_support", "stf_tenure")},
    ),
    District(
        "d02", "Bluebonnet Independent School District", "TX", "4823456", "suburban", "bluebonnetisd.org",
        "S", 7, 1.0, 0.62,
        codes={
            "grade_level": {**_grades("PK", "KG", lambda g: f"{g:02d}"), "PK": ["PK", "EE"]},  # EE: early education
            "gender": {"F": ["Female"], "M": ["Male"], "X": ["Non-binary"]},
            "race": {k: [v] for k, v in RACE_LABELS.items() if k != "MENA"},
            "hispanic_latino": YES_NO,
            "english_learner": {True: ["LEP"], False: ["Non-LEP", "RFEP"]},
            "iep": JSON_BOOL,
            "section_504": JSON_BOOL,
            "lunch_status": {"Free": ["Free"], "Reduced": ["Reduced"], "Paid": ["Paid"]},
        },
        race_separators=(";",), fourth_school="PK-8",
        student_window=Window(2, 1, 4), staff_window=Window(2, 1, 4), family_window=Window(11, 1, 3),
        non_substantive=((8, "Don't know"), (9, "Prefer not to answer")),
        normalized_style="spaces", shuffled_positions=True,
        client_questions={"student": ("stu_open_better", "stu_breakfast", "stu_activities"),
                          "staff": ("stf_open_support", "stf_role"), "family": ("fam_open_comments", "fam_children")},
    ),
    District(
        "d03", "Hudson Ridge Central School District", "NY", "3634567", "21", "hudsonridge.org",
        "", 9, 0.8, 0.41,
        codes={
            "grade_level": _grades("PK", "00", lambda g: f"{g:02d}"),
            "gender": {"M": ["1"], "F": ["2"], "X": ["3"]},
            # White=1 Black=2 Asian=3 AIAN=4 NHPI=5 ... and 7 = MENA, a code only d03 uses
            "race": {"White": ["1"], "Black": ["2"], "Asian": ["3"], "AIAN": ["4"], "NHPI": ["5"], "MENA": ["7"]},
            "hispanic_latino": ONE_ZERO,
            "english_learner": {True: ["EL"], False: ["EO", "RFEP", "Monitored"]},
            "iep": ONE_ZERO,
            "section_504": ONE_ZERO,
            "lunch_status": {"Free": ["1"], "Reduced": ["2"], "Paid": ["3"]},
        },
        race_separators=("|",), fourth_school="K-12",
        student_window=Window(11, 1, 2), staff_window=Window(11, 1, 3), family_window=None,
        anonymous_student_survey=True,
        non_substantive=((98, "I don't know"), (99, "Not applicable")),
        options_descending=True, normalized_style="upper",
        client_questions={"student": ("stu_open_proud", "stu_commute"), "staff": ("stf_open_support", "stf_pd")},
    ),
    District(
        "d04", "Prairie Lakes Community Unit School District", "IL", "1745678", "Rural - Remote", "plcusd.net",
        "PL", 5, 0.9, 0.48,
        codes={
            "grade_level": _grades("Pre-K", "Kindergarten", lambda g: f"Grade {g}", "Ungraded"),
            "gender": {"F": ["W"], "M": ["M"], "X": ["X"]},  # W (woman) = female: only d04
            "race": {"AIAN": ["Native American"], "Asian": ["Asian"], "Black": ["Black"],
                     "NHPI": ["Pacific Islander"], "White": ["White"], "MENA": ["MENA"]},
            "hispanic_latino": JSON_BOOL,
            "english_learner": YES_NO,
            "iep": YES_NO,
            "section_504": YES_NO,
            "lunch_status": {"Free": ["Free"], "Reduced": ["Reduced"], "Paid": ["Full price"]},
        },
        race_separators=(",",), fourth_school="K-5",
        student_window=Window(3, 1, 3), staff_window=Window(3, 1, 3), family_window=None,
        answers_as_labels="all", non_substantive=((0, "N/A"),),
        normalized_style="question", shuffled_positions=True,
        client_questions={"student": ("stu_open_better", "stu_activities"), "staff": ("stf_open_support", "stf_tenure")},
    ),
    District(
        "d05", "Gulf Coast County Public Schools", "FL", None, "Town: Fringe", "gulfcoastschools.net",
        "", 10, 0.6, 0.71,
        codes={
            "grade_level": _grades("PK", "K", _ordinal),
            "gender": {"F": ["F"], "M": ["M"], "X": ["N"]},  # N (nonbinary): only d05
            "race": {"AIAN": ["I"], "Asian": ["A"], "Black": ["B"], "NHPI": ["P"], "White": ["W"]},
            "hispanic_latino": YN,
            # Florida ELL codes: LY current, LF former (monitored), ZZ never
            "english_learner": {True: ["LY"], False: ["ZZ", "LF"]},
            "iep": YN,
            "section_504": YN,
            "lunch_status": {"Free": ["Free"], "Reduced": ["Reduced"], "Paid": ["Not eligible"]},
        },
        race_separators=(";",), fourth_school="PK-8",
        student_window=Window(10, 15, 4), staff_window=Window(1, 10, 3), family_window=None,
        normalized_style="curly",
        client_questions={"student": ("stu_open_better", "stu_breakfast"), "staff": ("stf_open_support", "stf_tenure")},
    ),
    District(
        "d06", "Buckeye Heights City Schools", "OH", "3956789", "13", "buckeyeheights.org",
        "BH", 6, 1.0, 0.39,
        codes={
            "grade_level": {**_grades("PK", "KG", str), "KG": ["KG", "K"]},
            "gender": {"F": ["Female"], "M": ["Male"], "X": ["Nonbinary"]},
            # alphabetical numeric codes: same digits as d03 but different meanings
            "race": {"AIAN": ["1"], "Asian": ["2"], "Black": ["3"], "NHPI": ["4"], "White": ["5"]},
            "hispanic_latino": YES_NO,
            "english_learner": JSON_BOOL,
            "iep": JSON_BOOL,
            "section_504": YN,
            "lunch_status": {"Free": ["Free"], "Reduced": ["Reduced"], "Paid": ["Paid"]},
        },
        race_separators=("|",), fourth_school="K-8",
        student_window=Window(4, 10, 3), staff_window=Window(4, 10, 3), family_window=Window(4, 10, 4),
        non_substantive=((8, "Not applicable"), (9, "Decline to answer")),
        options_descending=True, normalized_style="spaces", shuffled_positions=True,
        client_questions={"student": ("stu_open_proud", "stu_commute", "stu_breakfast"),
                          "staff": ("stf_open_support", "stf_role", "stf_tenure"),
                          "family": ("fam_open_comments", "fam_contact")},
    ),
    District(
        "d07", "Cascade Falls School District", "WA", "5367890", None, "cascadefalls.wednet.edu",
        "", 7, 0.9, 0.44,
        codes={
            "grade_level": _grades("PK", "K", lambda g: f"{g:02d}"),
            "gender": {"F": ["F"], "M": ["M"], "X": ["X"], "Unknown": ["U"]},
            "race": {"AIAN": ["AIAN"], "Asian": ["Asian"], "Black": ["Black"], "NHPI": ["NHPI"],
                     "White": ["White"], "MENA": ["MENA"]},
            "hispanic_latino": YN,
            "english_learner": {True: ["EL"], False: ["Never EL", "Monitored", "Exited"]},
            "iep": YN,
            "section_504": YN,
            "lunch_status": {"Free": ["Free"], "Reduced": ["Reduced"], "Paid": ["Paid"]},
        },
        race_separators=(",",), fourth_school="K-12",
        student_window=Window(1, 20, 3), staff_window=Window(1, 20, 3), family_window=None,
        anonymous_student_survey=True, answers_as_labels="part", non_substantive=((8, "Not sure"),),
        normalized_style="curly",
        client_questions={"student": ("stu_open_better", "stu_activities"), "staff": ("stf_open_support", "stf_role")},
    ),
    District(
        "d08", "Front Range Valley School District", "CO", "0878901", "42", "frontrangevalley.org",
        "FR", 6, 1.1, 0.33,
        codes={
            "grade_level": _grades("PK", "K", str),
            "gender": {"F": ["F"], "M": ["M"], "X": ["NB"]},
            "race": {"AIAN": ["I"], "Asian": ["A"], "Black": ["B"], "NHPI": ["P"], "White": ["W"], "MENA": ["M"]},
            "hispanic_latino": ONE_ZERO,
            "english_learner": ONE_ZERO,
            "iep": ONE_ZERO,
            "section_504": ONE_ZERO,
            # Direct Cert: directly certified for free meals, only d08
            "lunch_status": {"Free": ["Free", "Direct Cert"], "Reduced": ["Reduced"], "Paid": ["Not eligible"]},
        },
        race_separators=(",", ";", "|"), fourth_school="6-12",
        student_window=Window(9, 20, 4), staff_window=Window(9, 20, 4), family_window=None,
        normalized_style="upper", skipped_topics=("stu_expectations",),
        client_questions={"student": ("stu_open_better", "stu_commute"), "staff": ("stf_open_support", "stf_role")},
    ),
)
DISTRICT_BY_ID = {d.district_id: d for d in DISTRICTS}

# Codes nobody could map, one of them given to about 0.5% of students per field. Their
# truth is Unknown / null.
UNMAPPABLE_CODES: dict[str, tuple[str, ...]] = {
    "grade_level": ("??", "Gr", "K5?"),
    "gender": ("??", "Femal", "0"),
    "race": ("Whtie", "??", "Blak"),
    "hispanic_latino": ("?", "Unk"),
    "english_learner": ("??", "Pend"),
    "iep": ("?",),
    "section_504": ("?",),
    "lunch_status": ("??", "Pending app"),
}
UNMAPPABLE_SHARE = 0.005
# Share of null per field (truth Unknown / null).
NULL_SHARE = {
    "grade_level": 0.003, "gender": 0.01, "race": 0.03, "hispanic_latino": 0.02,
    "english_learner": 0.02, "iep": 0.01, "section_504": 0.01, "lunch_status": 0.04,
}
DEMOGRAPHIC_FIELDS = tuple(NULL_SHARE)

FIRST_NAMES = (
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Mateo", "Sophia", "Elijah", "Isabella", "Lucas",
    "Mia", "Aiden", "Amelia", "Jayden", "Harper", "Ethan", "Camila", "Kai", "Aaliyah", "Diego",
    "Zoe", "Omar", "Layla", "Hiro", "Priya", "Malik", "Nora", "Santiago", "Fatima", "Wei",
    "Chloe", "Andre", "Lucia", "Ibrahim", "Grace", "Dmitri", "Maya", "Tyrone", "Sofia", "Kenji",
)
LAST_NAMES = (
    "Smith", "Johnson", "Garcia", "Nguyen", "Brown", "Martinez", "Lee", "Davis", "Lopez", "Wilson",
    "Anderson", "Hernandez", "Kim", "Patel", "Thomas", "Jackson", "White", "Chen", "Robinson", "Walker",
    "O'Brien", "Rivera", "Haddad", "Okafor", "Yazzie", "Kealoha", "Schmidt", "Rossi", "Novak", "Ali",
    "Begay", "Tran", "Cohen", "Murphy", "Khan", "Santos", "Park", "Mensah", "Larsen", "Flores",
)

SCHOOL_NAMES = (
    "Lincoln", "Washington", "Jefferson", "Roosevelt", "Cedar Grove", "Oak Hill", "Riverside",
    "Sunset", "Meadowbrook", "Pine Ridge", "Lakeview", "Hillcrest", "Eastside", "Westwood",
    "Northgate", "Southpoint", "Mountain View", "Valley", "Harbor", "Willow Creek",
)
LEVEL_SUFFIX = {"PK-5": "Elementary School", "K-5": "Elementary School", "6-8": "Middle School",
                "9-12": "High School", "K-8": "Academy", "PK-8": "K-8 School", "K-12": "Community School",
                "6-12": "Secondary School"}
# School grade ranges past the first four, cycling as scale grows.
MORE_SCHOOLS = ("K-5", "K-5", "6-8", "PK-5", "9-12", "K-5", "K-8", "6-8")

# Surveys whose window was extended after they opened: (district, type, year) -> extra days.
WINDOW_EXTENSIONS = {("d05", "student", "2023-24"): 7, ("d02", "staff", "2024-25"): 7}
# Districts first synced with other values, then updated to the ones in DISTRICTS.
DISTRICT_INITIAL_VALUES = {"d02": {"name": "Bluebonnet ISD"}, "d08": {"locale": "Rural"}}
DISTRICT_CHANGED_ON = {"d02": date(2023, 7, 10), "d08": date(2024, 7, 15)}
EXTRA_KEY = "device_type"  # the column the platform adds to survey_responses
EXTRA_KEY_TABLE = "survey_responses"
EXTRA_KEY_FROM = date(2024, 1, 15)  # present on every row with _ts on or after this date
DEVICE_TYPES = ("desktop", "chromebook", "tablet", "phone")
REVIEWERS = ("j.alvarez", "m.chen", "r.okafor")


def schools_per_district(scale: float) -> int:
    return max(4, round(6 * scale**0.5))


def school_grades(district: District, index: int) -> str:
    """Grades the index-th school (0-based) of a district serves."""
    first = ("PK-5", "6-8", "9-12", district.fourth_school)
    return first[index] if index < 4 else MORE_SCHOOLS[(index - 4 + district.number) % len(MORE_SCHOOLS)]


def hourly_days() -> tuple[date, ...]:
    d01 = DISTRICT_BY_ID["d01"]
    return tuple(d01.student_window.dates(y)[0] for y in SCHOOL_YEARS)


# --------------------------------------------------------------------------------------
# Question wording


def normalize_text(text: str) -> str:
    """The warehouse's exact-match key: lowercase, strip punctuation, collapse whitespace."""
    text = re.sub(r"[^\w\s]", "", text.lower())
    return re.sub(r"\s+", " ", text).strip()


def normalized_variant(text: str, style: str) -> str:
    """Change case, whitespace or punctuation only."""
    body = text.rstrip(".")
    if style == "lower":
        return body.lower()
    if style == "upper":
        return text.upper()
    if style == "spaces":
        words = body.split(" ")
        return "  ".join(words[:2]) + " " + " ".join(words[2:]) + " "
    if style == "question":
        return body + "?"
    if style == "curly":
        return body.replace("'", "\u2019") + ". *"
    raise ValueError(f"unknown normalized style {style!r}")


def variant_kind(district: District, item: Item) -> str:
    """How this district words this item: fixed by design, the same every year."""
    h = zlib.crc32(f"{district.district_id}|{item.canonical_item_id}".encode()) % 100
    if h < 35:
        return "exact"
    if h < 55:
        return "normalized"
    if h < 80 or item.reordered is None:
        return "rephrased"
    return "reordered"


def question_text(district: District, item: Item) -> tuple[str, str]:
    """(client wording, variant kind)."""
    kind = variant_kind(district, item)
    text = {
        "exact": item.canonical_text,
        "normalized": normalized_variant(item.canonical_text, district.normalized_style),
        "rephrased": item.rephrased,
        "reordered": item.reordered,
    }[kind]
    return text, kind


def survey_topics(district: District, respondent_type: str) -> tuple[Topic, ...]:
    return tuple(
        t for t in TOPICS if t.respondent_type == respondent_type and t.topic_id not in district.skipped_topics
    )


def survey_types(district: District) -> tuple[str, ...]:
    return ("student", "staff") + (("family",) if district.family_window else ())


@dataclass(frozen=True)
class FormQuestion:
    """One question on a district's form for one respondent type (same every year)."""

    position: int
    text: str
    variant_kind: str  # exact, normalized, rephrased, reordered, client_only
    canonical_item_id: str | None
    options: tuple[tuple[int, str], ...] | None  # display order; None = open-ended
    scale_points: int  # 0 for client-only questions
    reverse_coded: bool
    client_key: str | None = None


def form(district: District, respondent_type: str) -> tuple[FormQuestion, ...]:
    items = [i for t in survey_topics(district, respondent_type) for i in ITEMS if i.topic_id == t.topic_id]
    if district.shuffled_positions:
        items.sort(key=lambda i: zlib.crc32(f"{district.district_id}|pos|{i.canonical_item_id}".encode()))
    out: list[FormQuestion] = []
    for item in items:
        labels = SCALES[item_scale(item)]
        options = tuple(enumerate(labels, start=1))
        if district.options_descending:
            options = options[::-1]
        options += district.non_substantive
        text, kind = question_text(district, item)
        out.append(FormQuestion(0, text, kind, item.canonical_item_id, options, len(labels), item.reverse_coded))
    client = [CLIENT_QUESTIONS[k] for k in district.client_questions.get(respondent_type, ())]
    for q in client:
        options = None if q.options is None else tuple(enumerate(q.options, start=1))
        fq = FormQuestion(0, q.text, "client_only", None, options, 0, False, q.key)
        # open-ended questions go last, closed ones first
        if q.options is None:
            out.append(fq)
        else:
            out.insert(0, fq)
    return tuple(_at(fq, p) for p, fq in enumerate(out, start=1))


def _at(q: FormQuestion, position: int) -> FormQuestion:
    return FormQuestion(position, q.text, q.variant_kind, q.canonical_item_id, q.options, q.scale_points,
                        q.reverse_coded, q.client_key)


def survey_title(district: District, respondent_type: str, school_year: str) -> str:
    kind = {"student": "Student", "staff": "Staff", "family": "Family"}[respondent_type]
    short = district.name.split(" School")[0].split(" Public")[0].split(" City")[0].split(" Independent")[0]
    return f"{short} {kind} Climate Survey {school_year}"


# --------------------------------------------------------------------------------------
# Seed files


def topics_rows() -> list[dict]:
    return [
        {"topic_id": t.topic_id, "topic_name": t.topic_name, "respondent_type": t.respondent_type,
         "description": t.description}
        for t in TOPICS
    ]


def canonical_items_rows() -> list[dict]:
    return [
        {"canonical_item_id": i.canonical_item_id, "topic_id": i.topic_id, "canonical_text": i.canonical_text,
         "scale_points": scale_points(i), "reverse_coded": str(i.reverse_coded).lower(),
         "favorable_threshold": favorable_threshold(scale_points(i))}
        for i in ITEMS
    ]


def non_substantive_rows() -> list[dict]:
    return [{"option_label": label, "reason": reason} for label, reason in NON_SUBSTANTIVE_OPTIONS]


def crosswalk_rows() -> list[dict]:
    """One row per rephrased or reordered wording a district uses."""
    rows = []
    for d in DISTRICTS:
        for rtype in survey_types(d):
            for q in form(d, rtype):
                if q.variant_kind in ("rephrased", "reordered"):
                    h = zlib.crc32(f"{d.district_id}|review|{q.canonical_item_id}".encode())
                    rows.append({
                        "district_id": d.district_id,
                        "survey_id": "",
                        "question_text": q.text,
                        "canonical_item_id": q.canonical_item_id,
                        "reviewed_by": REVIEWERS[h % len(REVIEWERS)],
                        "reviewed_on": (date(2022, 9, 1) + timedelta(days=h % 40)).isoformat(),
                    })
    rows.sort(key=lambda r: (r["district_id"], r["canonical_item_id"]))
    return rows


SEED_FILES = {
    "topics.csv": topics_rows,
    "canonical_items.csv": canonical_items_rows,
    "non_substantive_options.csv": non_substantive_rows,
    "question_crosswalk.csv": crosswalk_rows,
}


def render_csv(rows: list[dict]) -> str:
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_seed_files(seeds_dir: Path) -> None:
    seeds_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in SEED_FILES.items():
        (seeds_dir / name).write_text(render_csv(rows()), encoding="utf-8")


if __name__ == "__main__":
    write_seed_files(Path(sys.argv[1] if len(sys.argv) > 1 else "seeds/survey"))
