"""Well-known countries and their capitals: the table the capital and capital_sentence families share."""

# Well-known countries with one unambiguous capital, in plain ASCII.
CAPITALS: dict[str, str] = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid", "Portugal": "Lisbon",
    "United Kingdom": "London", "Ireland": "Dublin", "Belgium": "Brussels", "Austria": "Vienna", "Poland": "Warsaw",
    "Czech Republic": "Prague", "Slovakia": "Bratislava", "Hungary": "Budapest", "Romania": "Bucharest",
    "Bulgaria": "Sofia", "Greece": "Athens", "Croatia": "Zagreb", "Serbia": "Belgrade", "Slovenia": "Ljubljana",
    "Denmark": "Copenhagen", "Norway": "Oslo", "Sweden": "Stockholm", "Finland": "Helsinki", "Iceland": "Reykjavik",
    "Estonia": "Tallinn", "Latvia": "Riga", "Lithuania": "Vilnius", "Ukraine": "Kyiv", "Russia": "Moscow",
    "Turkey": "Ankara", "Cyprus": "Nicosia", "Malta": "Valletta", "Albania": "Tirana", "Egypt": "Cairo",
    "Morocco": "Rabat", "Algeria": "Algiers", "Tunisia": "Tunis", "Libya": "Tripoli", "Nigeria": "Abuja",
    "Ghana": "Accra", "Senegal": "Dakar", "Kenya": "Nairobi", "Ethiopia": "Addis Ababa", "Uganda": "Kampala",
    "Rwanda": "Kigali", "Zimbabwe": "Harare", "Zambia": "Lusaka", "Angola": "Luanda", "Mozambique": "Maputo",
    "Madagascar": "Antananarivo", "Namibia": "Windhoek", "Botswana": "Gaborone", "Sudan": "Khartoum",
    "Mali": "Bamako", "China": "Beijing", "Japan": "Tokyo", "South Korea": "Seoul", "North Korea": "Pyongyang",
    "Mongolia": "Ulaanbaatar", "India": "New Delhi", "Pakistan": "Islamabad", "Bangladesh": "Dhaka",
    "Nepal": "Kathmandu", "Afghanistan": "Kabul", "Iran": "Tehran", "Iraq": "Baghdad", "Syria": "Damascus",
    "Jordan": "Amman", "Lebanon": "Beirut", "Saudi Arabia": "Riyadh", "Qatar": "Doha", "Oman": "Muscat",
    "Thailand": "Bangkok", "Vietnam": "Hanoi", "Cambodia": "Phnom Penh", "Laos": "Vientiane", "Philippines": "Manila",
    "Kazakhstan": "Astana", "Uzbekistan": "Tashkent", "Armenia": "Yerevan", "Azerbaijan": "Baku", "Canada": "Ottawa",
    "Mexico": "Mexico City", "Cuba": "Havana", "Jamaica": "Kingston", "Guatemala": "Guatemala City",
    "Honduras": "Tegucigalpa", "Nicaragua": "Managua", "Costa Rica": "San Jose", "Panama": "Panama City",
    "Colombia": "Bogota", "Venezuela": "Caracas", "Ecuador": "Quito", "Peru": "Lima", "Chile": "Santiago",
    "Argentina": "Buenos Aires", "Uruguay": "Montevideo", "Paraguay": "Asuncion", "Brazil": "Brasilia",
    "Australia": "Canberra", "New Zealand": "Wellington", "Fiji": "Suva",
}  # fmt: skip
