"""Word lists for the synthetic data: names by nationality, employers, positions.

Plain constants only. Every person and company built from them is fictitious; nothing here
may ever be replaced by, or mixed with, real personal data.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CANCELLATION_REASONS",
    "COMPANY_BRANDS",
    "COMPANY_SECTORS",
    "NAME_GROUPS",
    "NATIONALITIES",
    "POSITIONS",
    "REVOCATION_REASONS",
    "NameGroup",
]


@dataclass(frozen=True, slots=True)
class NameGroup:
    male: tuple[str, ...]
    female: tuple[str, ...]
    family: tuple[str, ...]
    female_family_suffix: str = ""


NAME_GROUPS: dict[str, NameGroup] = {
    "en": NameGroup(
        ("James", "Michael", "David", "Daniel", "Thomas", "William", "Matthew", "Andrew", "Oliver"),
        ("Emily", "Sarah", "Olivia", "Hannah", "Grace", "Sophie", "Chloe", "Laura", "Charlotte"),
        ("Smith", "Johnson", "Brown", "Taylor", "Wilson", "Clarke", "Walker", "Wright", "Hughes",
         "Murphy", "Campbell", "Anderson", "Thompson", "Robinson"),
    ),
    "de": NameGroup(
        ("Lukas", "Felix", "Jonas", "Maximilian", "Paul", "Leon", "Tobias"),
        ("Anna", "Lena", "Marie", "Katharina", "Julia", "Lea", "Johanna"),
        ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Becker", "Hoffmann", "Wagner"),
    ),
    "fr": NameGroup(
        ("Louis", "Hugo", "Antoine", "Julien", "Nicolas", "Mathieu", "Pierre"),
        ("Camille", "Léa", "Chloé", "Manon", "Claire", "Élodie", "Inès"),
        ("Martin", "Bernard", "Dubois", "Laurent", "Lefebvre", "Moreau", "Girard", "Fontaine"),
    ),
    "es": NameGroup(
        ("Carlos", "Javier", "Alejandro", "Diego", "Pablo", "Andrés", "Miguel"),
        ("Lucía", "María", "Sofía", "Carmen", "Elena", "Paula", "Valentina"),
        ("García", "Fernández", "López", "Martínez", "Sánchez", "Romero", "Torres", "Navarro"),
    ),
    "pt": NameGroup(
        ("João", "Pedro", "Lucas", "Gabriel", "Rafael", "Tiago"),
        ("Ana", "Beatriz", "Mariana", "Juliana", "Camila", "Inês"),
        ("Silva", "Santos", "Oliveira", "Souza", "Pereira", "Costa", "Almeida", "Ferreira"),
    ),
    "it": NameGroup(
        ("Marco", "Luca", "Matteo", "Alessandro", "Lorenzo", "Davide"),
        ("Giulia", "Francesca", "Chiara", "Sara", "Martina", "Elisa"),
        ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci"),
    ),
    "ja": NameGroup(
        ("Haruto", "Sota", "Ren", "Takumi", "Kenji", "Daiki", "Yuto"),
        ("Yui", "Aoi", "Hina", "Sakura", "Mei", "Yuna", "Akari"),
        ("Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura"),
    ),
    "ko": NameGroup(
        ("Min-jun", "Ji-ho", "Do-yun", "Seo-jun", "Hyun-woo", "Jae-won"),
        ("Seo-yeon", "Ha-eun", "Ji-woo", "Su-bin", "Ye-jin", "Min-seo"),
        ("Kim", "Lee", "Park", "Choi", "Jung", "Kang", "Yoon", "Han"),
    ),
    "ru": NameGroup(
        ("Alexei", "Dmitri", "Ivan", "Sergei", "Nikolai", "Mikhail", "Andrei"),
        ("Anastasia", "Ekaterina", "Olga", "Natalia", "Irina", "Svetlana", "Daria"),
        ("Petrov", "Smirnov", "Volkov", "Sokolov", "Popov", "Kuznetsov", "Morozov", "Lebedev"),
        female_family_suffix="a",
    ),
    "hi": NameGroup(
        ("Arjun", "Rahul", "Vikram", "Rohan", "Aditya", "Karan"),
        ("Priya", "Ananya", "Kavya", "Divya", "Neha", "Ishita"),
        ("Sharma", "Patel", "Iyer", "Reddy", "Nair", "Gupta", "Singh", "Mehta"),
    ),
    "vi": NameGroup(
        ("Minh", "Duc", "Quang", "Tuan", "Hieu", "Long"),
        ("Linh", "Thu", "Huong", "Mai", "Lan", "Trang"),
        ("Nguyen", "Tran", "Le", "Pham", "Hoang", "Vu", "Dang", "Bui"),
    ),
    "ar": NameGroup(
        ("Omar", "Ahmed", "Youssef", "Karim", "Khaled", "Tarek"),
        ("Layla", "Nour", "Mariam", "Salma", "Yasmin", "Hana"),
        ("Hassan", "Mansour", "Haddad", "Khalil", "Farouk", "Nasser", "Saleh"),
    ),
    "wa": NameGroup(
        ("Chinedu", "Emeka", "Tunde", "Kwame", "Kofi", "Obinna"),
        ("Amara", "Ngozi", "Folake", "Abena", "Chioma", "Efua"),
        ("Okafor", "Adeyemi", "Mensah", "Okoye", "Balogun", "Owusu", "Boateng"),
    ),
}

# ISO 3166-1 alpha-3 → (name group, relative weight among foreign workers in the demo)
NATIONALITIES: dict[str, tuple[str, int]] = {
    "USA": ("en", 10), "GBR": ("en", 7), "CAN": ("en", 4), "AUS": ("en", 4), "NZL": ("en", 1),
    "DEU": ("de", 7), "AUT": ("de", 1), "FRA": ("fr", 6), "ESP": ("es", 4), "MEX": ("es", 2),
    "BRA": ("pt", 3), "PRT": ("pt", 1), "ITA": ("it", 4), "JPN": ("ja", 8), "KOR": ("ko", 9),
    "RUS": ("ru", 6), "IND": ("hi", 6), "VNM": ("vi", 4), "EGY": ("ar", 2), "NGA": ("wa", 2),
    "GHA": ("wa", 1),
}

POSITIONS: tuple[str, ...] = (
    "Software Engineer", "Senior Software Engineer", "Research Scientist", "Mechanical Engineer",
    "Automotive Design Engineer", "Optical Engineer", "Process Engineer", "Quality Manager",
    "Product Manager", "Sales Director", "General Manager", "Chief Financial Officer",
    "English Teacher", "University Lecturer", "Postdoctoral Researcher", "Physician",
    "Hydropower Consultant", "Chemical Engineer", "Marketing Manager", "Data Scientist",
    "Architect", "Chef", "Language Teacher", "Technical Director",
)

COMPANY_BRANDS: tuple[str, ...] = (
    "Hengtong", "Ruixin", "Zhongda", "Tianyu", "Huayang", "Jinhai", "Xinghe", "Longsheng",
    "Boyuan", "Kaida", "Minghui", "Yuanfang", "Changjiang", "Guanggu", "Sanxia", "Jingchu",
    "Hanjiang", "Donghu", "Qingshan", "Huaxin",
)

COMPANY_SECTORS: tuple[str, ...] = (
    "Automotive", "Optoelectronics", "Biopharma", "Software", "Education", "Engineering",
    "Trading", "Medical Devices", "New Energy", "Consulting", "Hydropower Equipment", "Chemicals",
    "Semiconductor", "Logistics",
)

CANCELLATION_REASONS: tuple[str, ...] = (
    "employment contract terminated",
    "employer applied for cancellation",
    "holder left China",
    "holder changed employer",
)

REVOCATION_REASONS: tuple[str, ...] = (
    "false statements in the application",
    "work outside the permitted employer found by inspection",
)
